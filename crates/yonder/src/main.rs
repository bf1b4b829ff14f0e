//! # yonder
//!
//! The `yonder` command: the one binary people run. It parses the command line,
//! wires the layers together and presents results; it must not contain
//! protocol logic, which lives in the library crates it calls.

#![forbid(unsafe_code)]

mod sim_cmd;
mod voice_cmd;
mod wire_cmd;

use yonder::{chat, cmds, daemon, room_cmd};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Offline, serverless, end-to-end encrypted mesh chat (Bitchat-compatible).
#[derive(Debug, Parser)]
#[command(name = "yonder", version, about)]
struct Cli {
    /// The node's data directory (default: $XDG_DATA_HOME/yonder).
    #[arg(long, global = true, env = "YONDER_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node in the foreground (LAN link by default).
    Up(daemon::config::UpArgs),
    /// Terminal chat client; attaches to the running node or runs one inside.
    Chat(chat::ChatArgs),
    #[command(flatten)]
    Client(cmds::ClientCommand),
    /// Inspect and build Bitchat/yonder packets.
    #[command(subcommand)]
    Wire(wire_cmd::WireCommand),
    /// Simulate a mesh of production nodes under a virtual clock and report metrics.
    Sim(Box<sim_cmd::SimArgs>),
    /// Audio rooms: host, list, join, speak, moderate.
    #[command(subcommand)]
    Room(room_cmd::RoomCommand),
    /// Audio-room media path tools.
    #[command(subcommand)]
    Voice(voice_cmd::VoiceCommand),
}

/// Exit code for bad input (a malformed packet, bad JSON, bad hex).
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line for bad flags (help and version output go through clap as usual).
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("yonder: {} (see --help)", first.trim_start_matches("error: "));
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let result = match cli.command {
        Command::Up(args) => cmds::up(cli.data_dir.as_deref(), &args),
        Command::Chat(args) => {
            cmds::data_dir(cli.data_dir.as_deref()).and_then(|dir| chat::run(&dir, args))
        }
        Command::Client(cmd) => cmds::run(cli.data_dir.as_deref(), cmd),
        Command::Wire(cmd) => wire_cmd::run(cmd).map_err(anyhow::Error::from),
        Command::Sim(args) => sim_cmd::run(*args).map_err(anyhow::Error::from),
        Command::Room(cmd) => room_cmd::run(cli.data_dir.as_deref(), cmd),
        Command::Voice(cmd) => voice_cmd::run(cmd).map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yonder: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
