//! Run results: the in-memory model and its JSON form.

pub mod model;

pub use model::*;
