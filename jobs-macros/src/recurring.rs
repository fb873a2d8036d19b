//! `#[recurring]`: the schedule of a job fn, checked at compile time against the
//! runtime's rules and registered through `inventory`. The fn's job itself is `job`'s,
//! which expands both attributes together.

mod attr;
mod expand;
mod validate;

pub(crate) use attr::Options;
pub(crate) use expand::expand;
pub(crate) use validate::validate;
