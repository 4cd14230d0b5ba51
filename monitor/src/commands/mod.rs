//! The subcommands: each wires the stages together for one way of using the monitor.
//! - `watch`: the pipeline's records as NDJSON on stdout, with alerts;
//! - `top`: the same records kept in a model and drawn on a terminal (`crate::tui`);
//! - `rules`: the detection rules in force, or the reference (docs/rules.md);
//! - `audit`: the one-shot check (the analysis lives in `crate::audit`);
//! - `config`: the config file's commented default, or a check of one (`crate::config`);
//! - `schema`: the fields and their types, as index templates or docs (`render::schema`);
//! - `package-assets` (hidden): man pages, completions and the default config for the package.
pub mod assets;
pub mod audit;
pub mod config;
pub mod rules;
pub mod schema;
pub mod top;
pub mod watch;
