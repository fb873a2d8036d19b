//! The attribute macros: what `#[job]` and `#[recurring]` generate. The error of every
//! misuse is checked by trybuild in the package `tests/ui/`, which builds only what its
//! cases use.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod job;
mod recurring;
