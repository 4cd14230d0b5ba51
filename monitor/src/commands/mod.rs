//! The subcommands: each wires the stages together for one way of using the monitor.
//! - `watch`: the pipeline's records as NDJSON on stdout, with alerts;
//! - `top`: the same records kept in a model and drawn on a terminal (`crate::tui`);
//! - `audit`: the one-shot check (the analysis lives in `crate::audit`).
pub mod audit;
pub mod top;
pub mod watch;
