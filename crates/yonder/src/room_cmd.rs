//! `yonder room ...`: audio rooms through the running node.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

use crate::chat::text::clean;
use crate::client::Client;
use crate::cmds::data_dir;
use crate::control::{Request, RoomInfo, RoomStatus};

/// Room commands.
#[derive(Debug, clap::Subcommand)]
pub enum RoomCommand {
    /// Host a new room (public rooms are announced on the mesh).
    Create {
        /// Title.
        title: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// A topic (up to 3).
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// Scheduled start: minutes from now (at most 14 days).
        #[arg(long)]
        in_minutes: Option<u64>,
        /// Never announce; members join by invitation.
        #[arg(long)]
        invite_only: bool,
    },
    /// Public rooms heard on the mesh.
    List {
        /// As a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Join a public room as a listener.
    Join {
        /// Room ID (or a unique prefix) or exact title.
        room: String,
        /// Join under no display name: nothing links you to your node.
        #[arg(long)]
        incognito: bool,
    },
    /// Leave the room (the host ends it).
    Leave,
    /// Raise your hand (`--down` lowers it; a host may lower another's).
    Hand {
        /// Lower instead.
        #[arg(long)]
        down: bool,
        /// Whose hand to lower (hosts only).
        member: Option<String>,
    },
    /// Invite a peer into the room you host, over your Noise session with it
    /// (the only way into an invite-only room).
    Send {
        /// Nickname, peer ID or fingerprint prefix.
        peer: String,
    },
    /// Invite a listener to speak (hosts and co-hosts).
    Invite {
        /// Room-key prefix or display name.
        member: String,
    },
    /// Accept an invitation to speak (`--decline` to refuse it).
    Speak {
        /// Decline instead.
        #[arg(long)]
        decline: bool,
    },
    /// Mute yourself, or (hosts) a speaker; `--off` unmutes yourself.
    Mute {
        /// A speaker to mute (hosts and co-hosts). Nobody can unmute another.
        member: Option<String>,
        /// Unmute yourself.
        #[arg(long)]
        off: bool,
    },
    /// Move yourself (or, as a host, a speaker) to the audience.
    Audience {
        /// The speaker (hosts and co-hosts).
        member: Option<String>,
    },
    /// Appoint a co-host (the host only); `--revoke` ends it.
    Cohost {
        /// The member.
        member: String,
        /// Revoke instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Remove a member (hosts and co-hosts).
    Remove {
        /// The member.
        member: String,
        /// Also ban the key.
        #[arg(long)]
        ban: bool,
    },
    /// Change the title, description, topics or schedule (hosts and co-hosts).
    Meta {
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New topics (repeat for up to 3; replaces the list).
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// New scheduled start: minutes from now (at most 14 days).
        #[arg(long)]
        in_minutes: Option<u64>,
    },
    /// End the room (the host only).
    End,
    /// Recording: `request` (host), `consent` (speakers), `start` (host), `stop`.
    Rec {
        /// request, consent, start or stop.
        step: String,
    },
    /// Speak a 16 kHz mono WAV file, in real time, as your microphone.
    Play {
        /// The file.
        wav: String,
        /// Talker mode: normal, lossy or constrained.
        #[arg(long, default_value = "normal")]
        mode: String,
    },
    /// Speak from a microphone (needs a build with the `devices` feature).
    Mic {
        /// Device name (see `yonder room devices`); the default input if absent.
        #[arg(long)]
        device: Option<String>,
        /// Close the microphone.
        #[arg(long)]
        off: bool,
        /// Talker mode: normal, lossy or constrained.
        #[arg(long, default_value = "normal")]
        mode: String,
    },
    /// Hear the room on speakers (needs a build with the `devices` feature).
    Speakers {
        /// Device name; the default output if absent.
        #[arg(long)]
        device: Option<String>,
        /// Close the speakers.
        #[arg(long)]
        off: bool,
    },
    /// Sound devices the node can open.
    Devices,
    /// Record what you hear to a WAV file (no file: stop and write it).
    Record {
        /// The file.
        wav: Option<String>,
    },
    /// Audit a capture file (`YONDER_CAPTURE_OUT`): how many of its sealed
    /// media frames for this room your current keys open.
    Probe {
        /// The capture file.
        capture: String,
    },
    /// The room: stage, audience, hands, who is speaking, REC.
    Status {
        /// As a JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn act(action: &str, member: Option<String>, ban: bool) -> Request {
    Request::RoomAct { action: action.to_owned(), member, ban }
}

/// Runs a room command against the node in `data_dir_flag`.
pub fn run(data_dir_flag: Option<&Path>, cmd: RoomCommand) -> anyhow::Result<()> {
    let dir = data_dir(data_dir_flag)?;
    let mut c = Client::connect(&dir)?;
    let out = &mut std::io::stdout().lock();
    let req = match cmd {
        RoomCommand::Create { title, description, topics, in_minutes, invite_only } => {
            let scheduled_start_ms = in_minutes.map(minutes_from_now);
            Request::RoomCreate { title, description, topics, scheduled_start_ms, invite_only }
        }
        RoomCommand::List { json } => {
            let v = c.request(&Request::RoomList)?;
            let rooms: Vec<RoomInfo> = serde_json::from_value(
                v.get("rooms").cloned().context("the node's answer has no rooms")?,
            )?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&rooms)?)?;
            } else if rooms.is_empty() {
                writeln!(out, "no public rooms heard")?;
            } else {
                for r in rooms {
                    let invited = if r.invited_by.is_some() { "  (invited)" } else { "" };
                    writeln!(
                        out,
                        "{}  {:<32} host {:<16} {} in the room{invited}",
                        short(&r.room),
                        clean(&r.title),
                        clean(&r.host),
                        r.audience
                    )?;
                }
            }
            return Ok(());
        }
        RoomCommand::Join { room, incognito } => Request::RoomJoin { room, incognito },
        RoomCommand::Leave => Request::RoomLeave,
        RoomCommand::Hand { down: false, member: None } => act("hand", None, false),
        RoomCommand::Hand { member, .. } => act("lower", member, false),
        RoomCommand::Send { peer } => Request::RoomInvitePeer { peer },
        RoomCommand::Invite { member } => act("invite", Some(member), false),
        RoomCommand::Speak { decline } => {
            act(if decline { "decline" } else { "accept" }, None, false)
        }
        RoomCommand::Mute { off: true, .. } => act("unmute", None, false),
        RoomCommand::Mute { member, .. } => act("mute", member, false),
        RoomCommand::Audience { member } => act("audience", member, false),
        RoomCommand::Cohost { member, revoke } => {
            act(if revoke { "uncohost" } else { "cohost" }, Some(member), false)
        }
        RoomCommand::Remove { member, ban } => act("remove", Some(member), ban),
        RoomCommand::Meta { title, description, topics, in_minutes } => Request::RoomMeta {
            title,
            description,
            topics: (!topics.is_empty()).then_some(topics),
            scheduled_start_ms: in_minutes.map(minutes_from_now),
        },
        RoomCommand::End => act("end", None, false),
        RoomCommand::Rec { step } => {
            let action = match step.as_str() {
                "request" | "consent" | "start" | "stop" => format!("record_{step}"),
                other => anyhow::bail!(
                    "unknown recording step {other:?} (request, consent, start, stop)"
                ),
            };
            act(&action, None, false)
        }
        RoomCommand::Play { wav, mode } => Request::RoomPlay { wav: absolute(&wav)?, mode },
        RoomCommand::Record { wav } => {
            Request::RoomRecord { wav: wav.as_deref().map(absolute).transpose()? }
        }
        RoomCommand::Mic { device, off, mode } => Request::RoomMic { device, off, mode },
        RoomCommand::Speakers { device, off } => Request::RoomSpeakers { device, off },
        RoomCommand::Devices => Request::RoomDevices,
        RoomCommand::Probe { capture } => Request::RoomProbe { capture: absolute(&capture)? },
        RoomCommand::Status { json } => {
            let v = c.request(&Request::RoomStatus)?;
            let room: Option<RoomStatus> =
                serde_json::from_value(v.get("room").cloned().unwrap_or(Value::Null))?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&room)?)?;
            } else {
                print_status(out, room.as_ref())?;
            }
            return Ok(());
        }
    };
    let mut v = c.request(&req)?;
    if let Some(m) = v.as_object_mut() {
        m.remove("ok");
    }
    writeln!(out, "{v}")?;
    Ok(())
}

/// Unix ms `m` minutes from now.
fn minutes_from_now(m: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    now.saturating_add(m.saturating_mul(60_000))
}

/// The node may run in another directory: give it a full path.
fn absolute(path: &str) -> anyhow::Result<String> {
    let p = std::path::absolute(path).with_context(|| format!("resolving {path}"))?;
    Ok(p.display().to_string())
}

fn print_status(out: &mut impl std::io::Write, room: Option<&RoomStatus>) -> std::io::Result<()> {
    let Some(r) = room else { return writeln!(out, "not in a room") };
    let rec = if r.recording { "  ● REC" } else { "" };
    writeln!(out, "{}  {}{rec}", short(&r.room), clean(&r.title))?;
    if r.gone {
        writeln!(out, "(the room is over for us: left, removed or ended)")?;
    } else if !r.member {
        writeln!(out, "(joining…)")?;
    }
    let line = |m: &crate::control::RoomMemberInfo| {
        let name = m.name.as_deref().filter(|n| !n.is_empty()).map(clean).unwrap_or_default();
        let mut flags = Vec::new();
        if m.speaking {
            flags.push("speaking");
        }
        if m.muted && m.role != "listener" {
            flags.push("muted");
        }
        if m.me {
            flags.push("you");
        }
        format!("  {} {:<9} {:<16} {}", short(&m.key), m.role, name, flags.join(" "))
    };
    writeln!(out, "stage:")?;
    for m in r.members.iter().filter(|m| m.role != "listener") {
        writeln!(out, "{}", line(m))?;
    }
    let audience: Vec<_> = r.members.iter().filter(|m| m.role == "listener").collect();
    writeln!(out, "audience: {}", audience.len())?;
    for m in audience {
        writeln!(out, "{}", line(m))?;
    }
    if !r.hands.is_empty() {
        let hands: Vec<&str> = r.hands.iter().map(|h| short(h)).collect();
        writeln!(out, "hands: {}", hands.join(", "))?;
    }
    writeln!(
        out,
        "frames: {} sent, {} heard, {} not opened",
        r.frames_sealed, r.frames_opened, r.frames_unopened
    )
}

/// The first 8 characters of an ID, for people (the whole string if shorter).
fn short(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(i, _)| &id[..i])
}
