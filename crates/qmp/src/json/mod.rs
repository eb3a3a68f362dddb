//! JSON as QEMU's QMP server reads and writes it: a streaming parser with
//! QEMU's framing, limits and error texts, and a writer of QEMU's exact bytes.

mod lexer;
mod parser;
mod stream;
mod utf8;
pub mod writer;

pub use serde_json::{Map, Value};
pub use stream::{Parser, MAX_MESSAGE_SIZE, MAX_NESTING, MAX_TOKENS};
