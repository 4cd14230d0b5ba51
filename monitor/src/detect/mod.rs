//! Judging what happens: the rules (`rules.rs`, the built-in ones in `rules.toml`), the
//! built-in detectors they run (`detectors.rs`) with the ancestry of the process for context
//! (`lineage.rs`), admins' own conditions over ECS fields (`condition.rs`, `fields.rs`), and
//! the engine that raises, exempts and de-duplicates alerts (`alerts.rs`); `suspicious.rs`
//! says what makes a program suspicious, for the rules and for `monitor audit`; `template.rs`
//! fills a `when` rule's alert message.
pub mod alerts;
pub mod condition;
pub mod detectors;
pub mod fields;
pub mod lineage;
pub mod rules;
pub mod suspicious;
pub mod template;
