//! # yonder
//!
//! The `yonder` command: the one binary people run. It parses the command line,
//! wires the layers together and presents results; it must not contain
//! protocol logic, which lives in the library crates it calls.

#![forbid(unsafe_code)]

mod wire_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Offline, serverless, end-to-end encrypted mesh chat (Bitchat-compatible).
#[derive(Debug, Parser)]
#[command(name = "yonder", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and build Bitchat/yonder packets.
    #[command(subcommand)]
    Wire(wire_cmd::WireCommand),
}

/// Exit code for bad input (a malformed packet, bad JSON, bad hex).
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Wire(cmd) => wire_cmd::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yonder: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
