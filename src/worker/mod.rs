//! (being written)
pub mod offsets;
