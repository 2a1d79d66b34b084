//! Run results: the in-memory model and its JSON form.

mod environment;
mod fit;
pub mod model;
pub mod tls;
pub mod verdict;

pub use model::*;
