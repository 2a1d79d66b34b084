//! The scenario engine (in progress).
