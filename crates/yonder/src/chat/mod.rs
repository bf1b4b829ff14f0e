//! `yonder chat`: the terminal chat client (being written).

use std::path::Path;

/// Options of `yonder chat`.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {}

/// Runs the chat client against the node in `data_dir`.
pub fn run(_data_dir: &Path, _args: ChatArgs) -> anyhow::Result<()> {
    anyhow::bail!("yonder chat is not built yet")
}
