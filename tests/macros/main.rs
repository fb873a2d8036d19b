//! The attribute macros: what `#[job]` and `#[recurring]` generate, and (through
//! `trybuild`, in `tests/ui/`) the error of every misuse.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod job;
mod recurring;
