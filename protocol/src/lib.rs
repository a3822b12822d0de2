//! RESP2/RESP3 for Tessera.

pub mod args;
pub mod parse;
pub mod reply;

pub use args::{ArgSpan, Args};
pub use reply::{Proto, Reply};
