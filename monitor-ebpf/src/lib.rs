//! The kernel programs are built as the `monitor` binary target of this crate (see `main.rs`);
//! this empty library only lets `monitor`'s build script depend on the crate.
#![no_std]
