//! The one-shot client commands (`yonder say`, `peers`, `events`, …): each
//! sends one request to the running node and prints the answer, as text for
//! people or as JSON (`--json`) for scripts.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

use crate::chat::text::clean;
use crate::client::{Client, ClientError};
use crate::control::{EventLine, HistoryItem, IdInfo, PeerInfo, Request};
use crate::daemon::{self, config};

/// Commands that talk to a running node.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Send a public message to everyone in reach.
    Say {
        /// The text (several words are joined with spaces).
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Send an end-to-end encrypted private message.
    Msg {
        /// Nickname (`nick#1a2b` if several share it), peer ID or fingerprint prefix.
        peer: String,
        /// The text.
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Tell a peer that you read its private message.
    Read {
        /// The author.
        peer: String,
        /// The message ID (from `events`).
        id: String,
    },
    /// Known peers, their links and verification state.
    Peers {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Follow what happens: messages, receipts, peers coming and going.
    Events {
        /// One JSON object per line, with a "kind" field.
        #[arg(long)]
        json: bool,
    },
    /// This node's peer ID and fingerprint.
    Id {
        /// Also show Bitchat's verification QR code.
        #[arg(long)]
        qr: bool,
        /// As a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Mark a peer verified after comparing its fingerprint out of band.
    Verify {
        /// The peer.
        peer: String,
        /// Its fingerprint as it showed it to you (64 hex digits; spaces allowed).
        #[arg(required = true)]
        fingerprint: Vec<String>,
    },
    /// Hide a peer's messages (they are still relayed for others).
    Block {
        /// The peer.
        peer: String,
    },
    /// Undo `block`.
    Unblock {
        /// The peer.
        peer: String,
    },
    /// Mark a peer as a favourite.
    Fav {
        /// The peer.
        peer: String,
    },
    /// Undo `fav`.
    Unfav {
        /// The peer.
        peer: String,
    },
    /// Change your nickname (announced at once).
    Nick {
        /// The new nickname.
        name: String,
    },
    /// The last messages, public and private.
    History {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// As a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Private messages waiting for their recipient.
    Outbox {
        /// As a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// The node's counters.
    Status {
        /// As a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Destroy your identity and every message at once; neighbours are told you left.
    Wipe {
        /// Required: there is no undo.
        #[arg(long)]
        yes: bool,
    },
}

/// The data directory clients look in.
pub fn data_dir(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let file = config::load_file(None).unwrap_or_default();
    Ok(config::data_dir(flag, Some(&file))?)
}

/// `yonder up`.
pub fn up(data_dir: Option<&Path>, args: &config::UpArgs) -> anyhow::Result<()> {
    init_logging();
    let opts = daemon::Options::resolve(data_dir, args)?;
    daemon::run_foreground(opts)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Fails only if a subscriber is already set, which is then kept.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn joined(words: &[String]) -> String {
    words.join(" ")
}

/// Runs one client command against the node in `data_dir`.
pub fn run(data_dir_flag: Option<&Path>, cmd: ClientCommand) -> anyhow::Result<()> {
    let dir = data_dir(data_dir_flag)?;
    if let ClientCommand::Wipe { yes } = cmd {
        return wipe(&dir, yes);
    }
    let mut c = Client::connect(&dir)?;
    let out = &mut std::io::stdout().lock();
    match cmd {
        ClientCommand::Say { text } => {
            let v = c.request(&Request::Say { text: joined(&text) })?;
            writeln!(out, "{}", str_field(&v, "id"))?;
        }
        ClientCommand::Msg { peer, text } => {
            let v = c.request(&Request::Msg { peer, text: joined(&text) })?;
            writeln!(out, "{}", str_field(&v, "id"))?;
        }
        ClientCommand::Read { peer, id } => {
            c.request(&Request::Read { peer, id })?;
        }
        ClientCommand::Peers { json } => {
            let v = c.request(&Request::Peers)?;
            let peers: Vec<PeerInfo> = field(&v, "peers")?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&peers)?)?;
            } else {
                print_peers(out, &peers)?;
            }
        }
        ClientCommand::Events { json } => {
            for item in c.events()? {
                let (raw, parsed) = item?;
                if json {
                    writeln!(out, "{raw}")?;
                } else if let Some(e) = parsed {
                    // Peers choose the text: no escape sequences reach the terminal.
                    writeln!(out, "{}", clean(&describe(&e)))?;
                }
                out.flush()?;
            }
        }
        ClientCommand::Id { qr, json } => {
            let v = c.request(&Request::Id)?;
            let info: IdInfo = serde_json::from_value(v).context("reading the node's answer")?;
            if json {
                let v = serde_json::json!({
                    "peer_id": info.peer_id, "fingerprint": info.fingerprint, "nick": info.nick,
                    "verify_url": info.verify_url,
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "nick         {}", info.nick)?;
                writeln!(out, "peer ID      {}", info.peer_id)?;
                writeln!(out, "fingerprint  {}", group(&info.fingerprint))?;
            }
            if qr {
                writeln!(out, "{}", qr_text(&info.verify_url)?)?;
                writeln!(out, "{}", info.verify_url)?;
            }
        }
        ClientCommand::Verify { peer, fingerprint } => {
            let v = c.request(&Request::Verify { peer, fingerprint: fingerprint.concat() })?;
            writeln!(out, "verified {}", str_field(&v, "peer_id"))?;
        }
        ClientCommand::Block { peer } => simple(&mut c, out, Request::Block { peer }, "blocked")?,
        ClientCommand::Unblock { peer } => {
            simple(&mut c, out, Request::Unblock { peer }, "unblocked")?;
        }
        ClientCommand::Fav { peer } => simple(&mut c, out, Request::Fav { peer }, "favourite")?,
        ClientCommand::Unfav { peer } => {
            simple(&mut c, out, Request::Unfav { peer }, "no longer a favourite")?;
        }
        ClientCommand::Nick { name } => {
            c.request(&Request::Nick { name })?;
        }
        ClientCommand::History { limit, json } => {
            let v = c.request(&Request::History { limit })?;
            let items: Vec<HistoryItem> = field(&v, "messages")?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&items)?)?;
            } else {
                for m in items {
                    let arrow = match m.direction.as_str() {
                        "private_in" => "(private) ",
                        "private_out" => "(private, to) ",
                        _ => "",
                    };
                    let (nick, text) = (clean(&m.nick), clean(&m.text));
                    writeln!(out, "{} {arrow}<{nick}> {text}", clock(m.timestamp))?;
                }
            }
        }
        ClientCommand::Outbox { json } => {
            let v = c.request(&Request::Outbox)?;
            let items: Vec<Value> = field(&v, "outbox")?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&items)?)?;
            } else {
                for m in items {
                    writeln!(out, "{} → {}", str_field(&m, "id"), str_field(&m, "to"))?;
                }
            }
        }
        ClientCommand::Status { json } => {
            let mut v = c.request(&Request::Status)?;
            if let Some(m) = v.as_object_mut() {
                m.remove("ok");
            }
            if json {
                writeln!(out, "{v}")?;
            } else if let Some(m) = v.as_object() {
                for (k, val) in m {
                    match val.as_str() {
                        Some(text) => writeln!(out, "{k:<12} {text}")?,
                        None => writeln!(out, "{k:<12} {val}")?,
                    }
                }
            }
        }
        ClientCommand::Wipe { .. } => {}
    }
    Ok(())
}

fn simple(
    c: &mut Client,
    out: &mut impl std::io::Write,
    req: Request,
    what: &str,
) -> anyhow::Result<()> {
    let v = c.request(&req)?;
    writeln!(out, "{} {what}", str_field(&v, "peer_id"))?;
    Ok(())
}

fn wipe(dir: &Path, yes: bool) -> anyhow::Result<()> {
    if !yes {
        anyhow::bail!(
            "wipe destroys your identity and every message in {}; run `yonder wipe --yes`",
            dir.display()
        );
    }
    match Client::connect(dir) {
        Ok(mut c) => {
            c.request(&Request::Wipe)?;
            println!("wiped; the node told its neighbours and stopped");
        }
        Err(ClientError::NotRunning { .. }) => {
            yonder_store::wipe(dir).context("wiping")?;
            println!("wiped {}", dir.display());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn str_field<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or("")
}

fn field<T: serde::de::DeserializeOwned>(v: &Value, name: &str) -> anyhow::Result<T> {
    let x = v.get(name).cloned().with_context(|| format!("the node's answer has no {name}"))?;
    serde_json::from_value(x).with_context(|| format!("reading {name} in the node's answer"))
}

fn print_peers(out: &mut impl std::io::Write, peers: &[PeerInfo]) -> std::io::Result<()> {
    if peers.is_empty() {
        return writeln!(out, "no peers yet");
    }
    writeln!(out, "{:<24} {:<16} {:>4}  {:<6} flags", "nick", "peer ID", "hops", "link")?;
    for p in peers {
        let id: yonder_wire::PeerId = p.peer_id.parse().unwrap_or(yonder_wire::PeerId([0; 8]));
        let mut flags = Vec::new();
        if p.verified {
            flags.push("verified");
        }
        if p.favourite {
            flags.push("favourite");
        }
        if p.blocked {
            flags.push("blocked");
        }
        if p.session {
            flags.push("session");
        }
        writeln!(
            out,
            "{:<24} {:<16} {:>4}  {:<6} {}",
            daemon::resolve::display_name(&p.nick, id),
            p.peer_id,
            if p.hops == 0 { "?".to_owned() } else { p.hops.to_string() },
            if p.direct { "direct" } else { "mesh" },
            flags.join(",")
        )?;
    }
    Ok(())
}

/// One line for a person.
pub fn describe(e: &EventLine) -> String {
    match e {
        EventLine::PublicMessage { nick, text, timestamp, from, .. } => {
            format!("{} <{}#{}> {text}", clock(*timestamp), nick, short(from))
        }
        EventLine::PrivateMessage { nick, text, timestamp, from, .. } => {
            format!("{} [private] <{}#{}> {text}", clock(*timestamp), nick, short(from))
        }
        EventLine::Sent { to, text, timestamp, .. } => match to {
            Some(to) => format!("{} [private → {}] {text}", clock(*timestamp), short(to)),
            None => format!("{} <me> {text}", clock(*timestamp)),
        },
        EventLine::Delivered { id, by } => format!("delivered {id} to {}", short(by)),
        EventLine::Read { id, by } => format!("read {id} by {}", short(by)),
        EventLine::SendFailed { id, to, reason } => {
            format!("not delivered {id} to {}: {reason}", short(to))
        }
        EventLine::PeerUp { peer_id, nick } => format!("* {nick}#{} joined", short(peer_id)),
        EventLine::PeerDown { peer_id, nick } => format!("* {nick}#{} left", short(peer_id)),
        EventLine::Nick { nick } => format!("* you are now {nick}"),
        EventLine::Lagged { missed } => format!("* missed {missed} events (reading too slowly)"),
        EventLine::Room { room, what, by, seq } => {
            let by = by.as_deref().map(|b| format!(" by {}", short(b))).unwrap_or_default();
            let seq = seq.map(|s| format!(" (#{s})")).unwrap_or_default();
            format!("* room {}: {what}{by}{seq}", short(room))
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..4).unwrap_or(id)
}

/// `HH:MM:SS` (UTC) of a Unix-ms timestamp.
pub fn clock(ms: u64) -> String {
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// A fingerprint in groups of eight hex digits, as people compare them.
fn group(hex: &str) -> String {
    hex.as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `data` as a QR code drawn with half-block characters.
fn qr_text(data: &str) -> anyhow::Result<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(data.as_bytes()).context("making the QR code")?;
    Ok(code.render::<Dense1x2>().quiet_zone(true).build())
}
