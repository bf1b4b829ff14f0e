//! `yonder chat`: a terminal chat client. It attaches to the node running
//! in the data directory, or starts one on a thread of its own process, and
//! in both cases talks to it only through the control socket, like any
//! other client.
//!
//! It shows what the node reports and sends what the user asks for; it
//! must not contain protocol logic (no packets, keys or routing): those
//! belong to the node. The state ([`App`]) is kept apart from the terminal
//! and from the connection ([`Session`]) so that both can be tested alone.

pub mod app;
pub mod command;
pub mod shell;
mod term;
pub mod text;
mod view;

use std::path::Path;

pub use app::{Action, App, Mark};
pub use command::{Command, ParseError, parse};
pub use shell::{Flow, Session};

use crate::daemon::config::UpArgs;

/// Options of `yonder chat`: those of `yonder up`, used when no node runs
/// in the data directory and the chat starts its own.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// Settings for the node the chat starts if none is running.
    #[command(flatten)]
    pub up: UpArgs,
}

/// Runs the chat client against the node in `data_dir`.
pub fn run(data_dir: &Path, args: ChatArgs) -> anyhow::Result<()> {
    let mut session = Session::attach(data_dir, &args.up)?;
    let mut app = App::new();
    if session.start(&mut app) == Flow::Quit {
        return session.close();
    }
    if !session.is_embedded() && has_settings(&args.up) {
        app.note("a node already runs in this data directory; the node options were not used");
    }
    let result = term::run(&mut session, &mut app);
    let closed = session.close();
    result.and(closed)
}

fn has_settings(up: &UpArgs) -> bool {
    up.nick.is_some()
        || !up.links.is_empty()
        || !up.peers.is_empty()
        || up.listen.is_some()
        || up.config.is_some()
}
