//! Everything about the running kernel: tracefs, BTF, the layout handed to the programs, and
//! loading/attaching the programs.
pub mod btf;
pub mod cgroups;
pub mod layout;
pub mod preflight;
pub mod probes;
pub mod tracefs;
