//! RESP2/RESP3 for Tessera.

pub mod args;
pub mod parse;
pub mod reply;
pub mod value;

pub use args::{ArgSpan, Args, OwnedArgs};
pub use parse::{Limits, Parsed, ProtocolError, RequestParser};
pub use reply::{Proto, Reply};
pub use value::{encode_request, DecodeError, Value};
