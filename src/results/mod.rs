//! Run results: the in-memory model and its JSON form.

mod environment;
pub mod model;

pub use model::*;
