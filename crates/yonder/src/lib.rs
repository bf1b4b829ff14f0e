//! # yonder
//!
//! The application layer behind the `yonder` command: the node daemon
//! (`yonder up`), its control protocol and clients, and the terminal chat.
//! It wires the layers together and presents
//! results; it must not contain protocol logic, which lives in the library
//! crates it calls.

#![forbid(unsafe_code)]

pub mod chat;
pub mod client;
pub mod cmds;
pub mod control;
pub mod daemon;
pub mod room_cmd;
