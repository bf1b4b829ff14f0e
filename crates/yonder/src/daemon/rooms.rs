//! Audio rooms in the node: the room session (yonder-core) between the
//! node's room tree and the media path (yonder-audio), a WAV file as the
//! microphone and another as the speaker, and the room requests of the
//! control socket.
//!
//! One room at a time. The audio clock is a 20 ms tick driven by the
//! daemon loop; a recording gets one frame of playout per tick, so sample
//! `k` of a recording was played `k / 16` ms after its first tick.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rand_core::OsRng;
use serde_json::{Value, json};
use tracing::{debug, info, warn};
use yonder_audio::{FRAME_MS, FRAME_SAMPLES, JitterConfig, Mode, Playout, Talker, VoiceFrame, wav};
use yonder_core::room::session::{
    CLASS_MEDIA_CONSTRAINED, CLASS_MEDIA_LOSSY, CLASS_MEDIA_NORMAL, TICK_MS,
};
use yonder_core::room::{
    Access, MemberKey, Op, Role, RoomCard, RoomEvent, RoomMeta, RoomOutput, RoomSession,
};
use yonder_core::{Instant, Node};
use yonder_wire::PeerId;

use super::Refusal;
use crate::control::{EventLine, FaultName, Request, RoomInfo, RoomMemberInfo, RoomStatus};

/// Public rooms remembered at once; the longest unheard goes first.
const MAX_CARDS: usize = 256;
/// A card not heard again for this long is forgotten.
const CARD_TTL_MS: u64 = 30_000;
/// Longest recording kept in memory (20 minutes at 16 kHz).
const MAX_RECORD_SAMPLES: usize = 20 * 60 * 16_000;
/// Largest WAV file played as a microphone (30 minutes of 16-bit 16 kHz
/// mono, plus room for the header).
const MAX_PLAY_BYTES: u64 = 30 * 60 * 32_000 + 4096;
/// Audio ticks per session tick.
const TICKS_PER_SESSION_TICK: u64 = TICK_MS / FRAME_MS as u64;

struct Microphone {
    class: u8,
    samples: Vec<i16>,
    at: usize,
}

/// Sound devices, with the `devices` feature; nothing without it.
#[derive(Default)]
struct Sound {
    #[cfg(feature = "devices")]
    capture: Option<yonder_audio::devices::Capture>,
    #[cfg(feature = "devices")]
    playback: Option<yonder_audio::devices::Playback>,
}

impl Sound {
    fn mic_open(&self) -> bool {
        #[cfg(feature = "devices")]
        return self.capture.is_some();
        #[cfg(not(feature = "devices"))]
        false
    }

    fn speakers_open(&self) -> bool {
        #[cfg(feature = "devices")]
        return self.playback.is_some();
        #[cfg(not(feature = "devices"))]
        false
    }

    /// The microphone's next 20 ms, if a microphone is open and has it.
    fn capture(&mut self) -> Option<Vec<i16>> {
        #[cfg(feature = "devices")]
        return self.capture.as_mut().and_then(yonder_audio::devices::Capture::read_frame);
        #[cfg(not(feature = "devices"))]
        None
    }

    fn play(&mut self, pcm: &[i16]) {
        #[cfg(feature = "devices")]
        if let Some(p) = &mut self.playback {
            p.write_frame(pcm);
        }
        #[cfg(not(feature = "devices"))]
        let _ = pcm;
    }
}

#[cfg(not(feature = "devices"))]
fn no_devices() -> Refusal {
    local("this yonder was built without sound devices (cargo feature `devices`); use WAV files")
}

struct Recording {
    path: PathBuf,
    samples: Vec<i16>,
    start_unix_ms: Option<u64>,
}

struct Active {
    session: RoomSession,
    playout: Playout,
    mic: Option<Microphone>,
    /// Our stream, kept between files so listeners hear one stream whose
    /// timestamps follow the clock.
    talker: Option<Talker>,
    /// The class our microphone's frames go in.
    mic_class: u8,
    /// Whether the node roots the room's tree for us (we host it, from the
    /// start or since we took over).
    rooted: bool,
    sound: Sound,
    recording: Option<Recording>,
    ticks: u64,
    heard: Vec<u32>,
    /// When the microphone file's first sample counts as spoken: 20 ms
    /// before the tick that sent the frame holding it, as a microphone
    /// would have delivered it.
    play_start_unix_ms: Option<u64>,
}

/// An invitation a peer sent us over Noise.
struct Invitation {
    card: RoomCard,
    bytes: Vec<u8>,
    from: PeerId,
    at_ms: u64,
}

/// Invitations kept at once; the oldest goes first.
const MAX_INVITATIONS: usize = 32;

/// The node's rooms: cards heard, invitations, and the room we are in.
#[derive(Default)]
pub(super) struct Rooms {
    cards: BTreeMap<[u8; 16], (RoomCard, u64)>,
    invitations: BTreeMap<[u8; 16], Invitation>,
    active: Option<Active>,
}

fn hex(b: &[u8]) -> String {
    yonder_wire::to_hex(b)
}

fn local(msg: impl Into<String>) -> Refusal {
    Refusal::new(msg, FaultName::Local)
}

fn class_of(mode: Mode) -> u8 {
    match mode {
        Mode::Normal => CLASS_MEDIA_NORMAL,
        Mode::Lossy => CLASS_MEDIA_LOSSY,
        Mode::Constrained => CLASS_MEDIA_CONSTRAINED,
    }
}

impl Rooms {
    /// Whether the audio tick should run.
    pub(super) fn active(&self) -> bool {
        self.active.is_some()
    }

    /// A room card flooded on the mesh.
    pub(super) fn on_announce(&mut self, tag: [u8; 8], data: &[u8], unix_ms: u64) {
        let card = match RoomCard::decode(data) {
            Ok(c) if c.tag == tag => c,
            Ok(_) => return debug!("room card under another tag; dropped"),
            Err(e) => return debug!("room card dropped: {e}"),
        };
        self.cards.retain(|_, (_, heard)| unix_ms.saturating_sub(*heard) < CARD_TTL_MS);
        if !self.cards.contains_key(&card.room.0) && self.cards.len() >= MAX_CARDS {
            let oldest = self.cards.iter().min_by_key(|(_, (_, h))| *h).map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.cards.remove(&k);
            }
        }
        self.cards.insert(card.room.0, (card, unix_ms));
    }

    /// An invitation from `from` (authenticated by our Noise session with
    /// it). Returns the room ID (hex) if it is one.
    pub(super) fn on_invitation(
        &mut self,
        from: PeerId,
        data: &[u8],
        unix_ms: u64,
    ) -> Option<String> {
        let card = match yonder_core::room::session::invitation_card(data) {
            Ok(c) => c,
            Err(e) => {
                debug!(%from, "room invitation dropped: {e}");
                return None;
            }
        };
        if !self.invitations.contains_key(&card.room.0) && self.invitations.len() >= MAX_INVITATIONS
        {
            let oldest = self.invitations.iter().min_by_key(|(_, i)| i.at_ms).map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.invitations.remove(&k);
            }
        }
        let room = hex(&card.room.0);
        info!(%from, room = %room, "invited to a room");
        self.invitations
            .insert(card.room.0, Invitation { card, bytes: data.to_vec(), from, at_ms: unix_ms });
        Some(room)
    }

    /// A fresh invitation to the room we host.
    pub(super) fn invitation(&mut self, unix_ms: u64) -> Result<Vec<u8>, Refusal> {
        let a = self.active.as_mut().ok_or_else(|| local("not in a room"))?;
        a.session.invite(unix_ms, &mut OsRng).map_err(|e| local(e.to_string()))
    }

    /// A datagram of a room's tree.
    pub(super) fn on_data(&mut self, tag: [u8; 8], class: u8, data: &[u8], unix_ms: u64) {
        if let Some(a) = &mut self.active
            && a.session.tag() == tag
        {
            a.session.handle_datagram(class, data, unix_ms, &mut OsRng);
        }
    }

    /// Moves what the session produced: datagrams to the node, frames to
    /// the playout, events to the subscribers.
    pub(super) fn drain(&mut self, node: &mut Node, now: Instant, unix_ms: u64) -> Vec<EventLine> {
        let mut lines = Vec::new();
        let Some(a) = &mut self.active else { return lines };
        let tag = a.session.tag();
        if a.session.is_host() && !a.rooted {
            // We took over from a host that is gone: the tree grows from us now.
            info!("took over as the room's host");
            node.room_host(now, tag);
            a.rooted = true;
        }
        while let Some(out) = a.session.poll_output() {
            let r = match out {
                RoomOutput::Send { class, payload } => node.room_send(now, tag, class, &payload),
                RoomOutput::Announce(card) => node.room_announce(now, tag, &card),
            };
            if let Err(e) = r {
                debug!("room datagram not sent: {e}");
            }
        }
        let room = hex(&a.session.room().0);
        while let Some(ev) = a.session.poll_event() {
            let (what, by, seq) = match ev {
                RoomEvent::Audio { slot, frame, .. } => {
                    match VoiceFrame::decode(&frame) {
                        Ok(f) => {
                            if let Err(e) = a.playout.push(slot, unix_ms, f) {
                                debug!("voice frame not played: {e}");
                            }
                        }
                        Err(e) => debug!("voice frame dropped: {e}"),
                    }
                    continue;
                }
                RoomEvent::Applied { seq, op, author } => {
                    (op.replace(' ', "_"), Some(hex(&author.0)), Some(seq))
                }
                RoomEvent::Joined => ("joined".to_owned(), None, None),
                RoomEvent::Removed => ("removed".to_owned(), None, None),
                RoomEvent::Ended => ("ended".to_owned(), None, None),
                RoomEvent::Rejected { reason } => {
                    warn!("the host refused: {reason}");
                    (format!("rejected: {reason}"), None, None)
                }
            };
            lines.push(EventLine::Room { room: room.clone(), what, by, seq });
        }
        lines
    }

    /// The 20 ms audio clock: microphone, playout, and the session's timers.
    pub(super) fn audio_tick(&mut self, unix_ms: u64) {
        let Some(a) = &mut self.active else { return };
        a.ticks += 1;
        if a.ticks % TICKS_PER_SESSION_TICK == 0 {
            a.session.handle_tick(unix_ms, &mut OsRng);
        }
        // The room stopped recording (a speaker withdrew, or the room is
        // over for us): so do we.
        let consented = a.session.state().is_some_and(|s| s.recording()) && !a.session.is_gone();
        if a.recording.is_some() && !consented {
            info!("the room stopped recording; writing ours");
            if let Err(e) = Self::finish_recording(a) {
                warn!("recording not written: {}", e.message);
            }
        }
        if let (Some(mic), Some(talker)) = (&mut a.mic, &mut a.talker) {
            if mic.at == 0 {
                a.play_start_unix_ms = Some(unix_ms.saturating_sub(u64::from(FRAME_MS)));
            }
            let end = (mic.at + FRAME_SAMPLES).min(mic.samples.len());
            let chunk = &mic.samples[mic.at..end];
            mic.at = end;
            match talker.frame(chunk) {
                Ok(Some(frame)) => match frame.encode() {
                    Ok(bytes) => {
                        if let Err(e) = a.session.seal_audio(mic.class, &bytes) {
                            debug!("frame not sent: {e}");
                        }
                    }
                    Err(e) => debug!("frame not encoded: {e}"),
                },
                Ok(None) => {}
                Err(e) => warn!("encoder failed: {e}"),
            }
            if mic.at >= mic.samples.len() {
                info!("microphone file played to the end");
                a.mic = None;
            }
        } else if let (Some(pcm), Some(talker)) = (a.sound.capture(), &mut a.talker) {
            match talker.frame(&pcm).map(|f| f.map(|f| f.encode())) {
                Ok(Some(Ok(bytes))) => {
                    if let Err(e) = a.session.seal_audio(a.mic_class, &bytes) {
                        debug!("frame not sent: {e}");
                    }
                }
                Ok(Some(Err(e))) => debug!("frame not encoded: {e}"),
                Ok(None) => {}
                Err(e) => warn!("encoder failed: {e}"),
            }
        } else if let Some(talker) = &mut a.talker {
            talker.skip();
        }
        match a.playout.tick(unix_ms) {
            Ok(pcm) => {
                a.heard = a.playout.heard(unix_ms);
                a.sound.play(&pcm);
                if let Some(rec) = &mut a.recording {
                    rec.start_unix_ms.get_or_insert(unix_ms);
                    if rec.samples.len() + pcm.len() <= MAX_RECORD_SAMPLES {
                        rec.samples.extend_from_slice(&pcm);
                    }
                }
            }
            Err(e) => warn!("playout failed: {e}"),
        }
    }

    /// Writes and closes the recording, if any.
    fn finish_recording(a: &mut Active) -> Result<Option<Value>, Refusal> {
        let Some(rec) = a.recording.take() else { return Ok(None) };
        wav::write(&rec.path, &rec.samples)
            .map_err(|e| local(format!("writing {}: {e}", rec.path.display())))?;
        let start = rec.start_unix_ms.unwrap_or(0);
        let sidecar = rec.path.with_extension("json");
        let meta = json!({"start_unix_ms": start, "samples": rec.samples.len()});
        std::fs::write(&sidecar, meta.to_string())
            .map_err(|e| local(format!("writing {}: {e}", sidecar.display())))?;
        info!(path = %rec.path.display(), samples = rec.samples.len(), "recording written");
        Ok(Some(json!({"wav": rec.path.display().to_string(), "start_unix_ms": start})))
    }

    /// Leaves the room at shutdown: tells the host, writes the recording.
    pub(super) fn shutdown(&mut self, node: &mut Node, now: Instant, unix_ms: u64) {
        if self.active.is_some() {
            let _ = self.leave(node, now, unix_ms);
        }
    }

    fn leave(&mut self, node: &mut Node, now: Instant, unix_ms: u64) -> Result<Value, Refusal> {
        let Some(a) = &mut self.active else { return Err(local("not in a room")) };
        if !a.session.is_gone() {
            let op = if a.session.is_host() { Op::End } else { Op::Leave };
            if let Err(e) = a.session.act(op, unix_ms, &mut OsRng) {
                debug!("leaving the room: {e}");
            }
        }
        let _ = self.drain(node, now, unix_ms);
        let Some(mut a) = self.active.take() else { return Err(local("not in a room")) };
        node.room_leave(now, a.session.tag());
        let rec = Self::finish_recording(&mut a)?;
        Ok(json!({"room": hex(&a.session.room().0), "recording": rec}))
    }

    /// Answers a room request.
    pub(super) fn request(
        &mut self,
        req: Request,
        node: &mut Node,
        now: Instant,
        unix_ms: u64,
        nick: &str,
    ) -> Result<Value, Refusal> {
        match req {
            Request::RoomCreate { title, description, topics, scheduled_start_ms, invite_only } => {
                if self.active.is_some() {
                    return Err(local("already in a room; leave it first"));
                }
                let meta = RoomMeta {
                    title,
                    description,
                    topics,
                    scheduled_start_ms,
                    access: if invite_only { Access::InviteOnly } else { Access::Open },
                };
                let name = truncate(nick, yonder_core::room::MAX_NAME);
                let session = RoomSession::host(meta, &name, !invite_only, unix_ms, &mut OsRng)
                    .map_err(|e| local(e.to_string()))?;
                node.room_host(now, session.tag());
                let room = hex(&session.room().0);
                self.start(session);
                Ok(json!({"room": room}))
            }
            Request::RoomList => {
                let info = |c: &RoomCard, heard: u64, by: Option<PeerId>| RoomInfo {
                    room: hex(&c.room.0),
                    title: c.title.clone(),
                    host: c.host_name.clone(),
                    audience: c.audience,
                    scheduled_start_ms: c.scheduled_start_ms,
                    heard_ms_ago: unix_ms.saturating_sub(heard),
                    invited_by: by.map(|p| p.to_hex()),
                };
                let mut rooms: Vec<RoomInfo> = self
                    .invitations
                    .values()
                    .map(|i| info(&i.card, i.at_ms, Some(i.from)))
                    .collect();
                rooms.extend(
                    self.cards
                        .values()
                        .filter(|(c, h)| {
                            unix_ms.saturating_sub(*h) < CARD_TTL_MS
                                && !self.invitations.contains_key(&c.room.0)
                        })
                        .map(|(c, h)| info(c, *h, None)),
                );
                Ok(json!({"rooms": rooms}))
            }
            Request::RoomJoin { room, incognito } => {
                if self.active.is_some() {
                    return Err(local("already in a room; leave it first"));
                }
                let card = self.find_card(&room)?;
                let name = if incognito {
                    String::new()
                } else {
                    truncate(nick, yonder_core::room::MAX_NAME)
                };
                let session = match self.invitations.remove(&card.room.0) {
                    Some(inv) => RoomSession::join_invited(&inv.bytes, &name, &mut OsRng),
                    None => RoomSession::join(&card, &name, &mut OsRng),
                }
                .map_err(|e| local(e.to_string()))?;
                node.room_join(now, session.tag());
                self.start(session);
                Ok(json!({"room": hex(&card.room.0), "title": card.title}))
            }
            Request::RoomLeave => self.leave(node, now, unix_ms),
            Request::RoomAct { action, member, ban } => {
                let a = self.active.as_mut().ok_or_else(|| local("not in a room"))?;
                let me = a.session.me();
                let who = |a: &Active| -> Result<MemberKey, Refusal> {
                    let m = member.as_deref().ok_or_else(|| local("say which member"))?;
                    find_member(&a.session, m)
                };
                let op = match action.as_str() {
                    "hand" => Op::RaiseHand,
                    "lower" => {
                        Op::LowerHand { member: if member.is_some() { who(a)? } else { me } }
                    }
                    "invite" => Op::InviteToSpeak { member: who(a)? },
                    "accept" => Op::AcceptInvite,
                    "decline" => Op::DeclineInvite,
                    "mute" if member.is_some() => Op::HostMute { member: who(a)? },
                    "mute" => Op::SelfMute,
                    "unmute" => Op::SelfUnmute,
                    "cohost" => Op::AppointCoHost { member: who(a)? },
                    "uncohost" => Op::RevokeCoHost { member: who(a)? },
                    "audience" => {
                        Op::MoveToAudience { member: if member.is_some() { who(a)? } else { me } }
                    }
                    "remove" => Op::Remove { member: who(a)?, ban },
                    "unban" => Op::Unban { member: who(a)? },
                    "end" => Op::End,
                    "record_request" => Op::RecordingRequest,
                    "record_consent" => Op::RecordingConsent,
                    "record_start" => Op::RecordingStart,
                    "record_stop" => Op::RecordingStop,
                    other => return Err(local(format!("unknown room action {other:?}"))),
                };
                let name = op.name();
                a.session.act(op, unix_ms, &mut OsRng).map_err(|e| local(e.to_string()))?;
                Ok(json!({"action": name, "host": a.session.is_host()}))
            }
            Request::RoomMeta { title, description, topics, scheduled_start_ms } => {
                let a = self.active.as_mut().ok_or_else(|| local("not in a room"))?;
                let st =
                    a.session.state().ok_or_else(|| local("the room log has not arrived yet"))?;
                let old = st.meta().clone();
                let meta = RoomMeta {
                    title: title.unwrap_or(old.title),
                    description: description.unwrap_or(old.description),
                    topics: topics.unwrap_or(old.topics),
                    scheduled_start_ms: scheduled_start_ms.or(old.scheduled_start_ms),
                    access: old.access,
                };
                a.session
                    .act(Op::UpdateMeta { meta }, unix_ms, &mut OsRng)
                    .map_err(|e| local(e.to_string()))?;
                Ok(json!({"action": "update meta"}))
            }
            Request::RoomPlay { wav: path, mode } => {
                let a = self.active.as_mut().ok_or_else(|| local("not in a room"))?;
                let mode = parse_mode(&mode)?;
                // Read whole, so bounded: the file plays from memory.
                let len = std::fs::metadata(&path)
                    .map_err(|e| local(format!("reading {path}: {e}")))?
                    .len();
                if len > MAX_PLAY_BYTES {
                    return Err(local(format!(
                        "{path} is over {} minutes of 16 kHz audio; split it",
                        MAX_PLAY_BYTES / 32_000 / 60
                    )));
                }
                let samples = wav::read(std::path::Path::new(&path))
                    .map_err(|e| local(format!("reading {path}: {e}")))?;
                match &mut a.talker {
                    Some(t) => t.set_mode(mode, 10),
                    None => Talker::new(mode, 10).map(|t| a.talker = Some(t)),
                }
                .map_err(|e| local(e.to_string()))?;
                let frames = samples.len().div_ceil(FRAME_SAMPLES);
                a.mic = Some(Microphone { class: class_of(mode), samples, at: 0 });
                a.play_start_unix_ms = None;
                Ok(json!({"frames": frames, "mode": mode.name()}))
            }
            Request::RoomRecord { wav: path } => {
                let a = self.active.as_mut().ok_or_else(|| local("not in a room"))?;
                let consented = a.session.state().is_some_and(|s| s.recording());
                if path.is_some() && !consented {
                    // Our client records only what everyone can see being
                    // recorded, with every speaker's consent.
                    return Err(local(
                        "the room is not being recorded: the host asks (room rec request), \
                         every speaker consents (room rec consent), the host starts (room rec \
                         start), and everyone sees REC",
                    ));
                }
                let done = Self::finish_recording(a)?;
                if let Some(p) = path {
                    a.recording = Some(Recording {
                        path: PathBuf::from(p),
                        samples: Vec::new(),
                        start_unix_ms: None,
                    });
                }
                Ok(json!({"finished": done}))
            }
            Request::RoomStatus => Ok(json!({"room": self.status()})),
            Request::RoomDevices => {
                #[cfg(feature = "devices")]
                {
                    let d = yonder_audio::devices::list().map_err(|e| local(e.to_string()))?;
                    Ok(json!({"inputs": d.inputs, "outputs": d.outputs}))
                }
                #[cfg(not(feature = "devices"))]
                Err(no_devices())
            }
            Request::RoomMic { device, off, mode } => {
                let a = self.active.as_mut().ok_or_else(|| local("not in a room"))?;
                let mode = parse_mode(&mode)?;
                #[cfg(feature = "devices")]
                {
                    if off {
                        a.sound.capture = None;
                    } else {
                        let c = yonder_audio::devices::Capture::open(device.as_deref())
                            .map_err(|e| local(e.to_string()))?;
                        a.sound.capture = Some(c);
                        match &mut a.talker {
                            Some(t) => t.set_mode(mode, 10),
                            None => Talker::new(mode, 10).map(|t| a.talker = Some(t)),
                        }
                        .map_err(|e| local(e.to_string()))?;
                        a.mic_class = class_of(mode);
                    }
                    Ok(json!({"mic": !off}))
                }
                #[cfg(not(feature = "devices"))]
                {
                    let _ = (a, device, off, mode);
                    Err(no_devices())
                }
            }
            Request::RoomSpeakers { device, off } => {
                let a = self.active.as_mut().ok_or_else(|| local("not in a room"))?;
                #[cfg(feature = "devices")]
                {
                    a.sound.playback = if off {
                        None
                    } else {
                        Some(
                            yonder_audio::devices::Playback::open(device.as_deref())
                                .map_err(|e| local(e.to_string()))?,
                        )
                    };
                    Ok(json!({"speakers": !off}))
                }
                #[cfg(not(feature = "devices"))]
                {
                    let _ = (a, device, off);
                    Err(no_devices())
                }
            }
            Request::RoomProbe { capture } => {
                let a = self.active.as_ref().ok_or_else(|| local("not in a room"))?;
                let text = std::fs::read_to_string(&capture)
                    .map_err(|e| local(format!("reading {capture}: {e}")))?;
                let (mut frames, mut opened) = (0u64, 0u64);
                for line in text.lines() {
                    let Some(sealed) = media_in_frame(line.trim(), a.session.tag()) else {
                        continue;
                    };
                    frames += 1;
                    if a.session.can_open(&sealed) {
                        opened += 1;
                    }
                }
                Ok(json!({"frames": frames, "opened": opened}))
            }
            _ => Err(local("not a room request")),
        }
    }

    fn start(&mut self, session: RoomSession) {
        let playout =
            Playout::new(JitterConfig::default(), yonder_audio::TalkerSelector::default());
        let rooted = session.is_host();
        self.active = Some(Active {
            session,
            playout,
            mic: None,
            talker: None,
            mic_class: CLASS_MEDIA_NORMAL,
            rooted,
            sound: Sound::default(),
            recording: None,
            ticks: 0,
            heard: Vec::new(),
            play_start_unix_ms: None,
        });
    }

    fn find_card(&self, query: &str) -> Result<RoomCard, Refusal> {
        let q = query.to_ascii_lowercase();
        let mut matches: Vec<&RoomCard> = self.invitations.values().map(|i| &i.card).collect();
        matches.extend(
            self.cards
                .values()
                .map(|(c, _)| c)
                .filter(|c| !self.invitations.contains_key(&c.room.0)),
        );
        matches.retain(|c| hex(&c.room.0).starts_with(&q) || c.title == query);
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(local(format!("no room {query:?} heard (try `yonder room list`)"))),
            _ => Err(local(format!("{query:?} names several rooms; give more of the ID"))),
        }
    }

    /// The current room as the status request shows it.
    pub(super) fn status(&self) -> Option<RoomStatus> {
        let a = self.active.as_ref()?;
        let s = &a.session;
        let stats = s.stats();
        let names = s.names();
        let (title, seq, mut members, hands, recording) = match s.state() {
            Some(st) => {
                let members: Vec<RoomMemberInfo> = st
                    .members()
                    .map(|(k, m)| RoomMemberInfo {
                        key: hex(&k.0),
                        name: names.get(k).cloned(),
                        role: role_name(m.role).to_owned(),
                        muted: m.muted,
                        speaking: u32::try_from(m.joined_seq).is_ok_and(|x| a.heard.contains(&x)),
                        me: *k == s.me(),
                    })
                    .collect();
                let hands = st.hands().map(|k| hex(&k.0)).collect();
                (st.meta().title.clone(), st.head_seq(), members, hands, st.recording())
            }
            None => (String::new(), 0, Vec::new(), Vec::new(), false),
        };
        let rank = |r: &str| match r {
            "host" => 0,
            "cohost" => 1,
            "speaker" => 2,
            _ => 3,
        };
        members.sort_by_key(|m| rank(&m.role));
        Some(RoomStatus {
            room: hex(&s.room().0),
            title,
            host: s.is_host(),
            member: s.is_member(),
            gone: s.is_gone(),
            seq,
            members,
            hands,
            recording,
            frames_sealed: stats.frames_sealed,
            frames_opened: stats.frames_opened,
            frames_unopened: stats.frames_unopened,
            control_bad: stats.control_bad,
            mic: a.sound.mic_open(),
            speakers: a.sound.speakers_open(),
            playing: a.mic.is_some(),
            play_start_unix_ms: a.play_start_unix_ms,
            recording_to_file: a.recording.is_some(),
        })
    }
}

fn parse_mode(mode: &str) -> Result<Mode, Refusal> {
    match mode {
        "normal" => Ok(Mode::Normal),
        "lossy" => Ok(Mode::Lossy),
        "constrained" => Ok(Mode::Constrained),
        other => Err(local(format!("unknown mode {other:?} (normal, lossy, constrained)"))),
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Host => "host",
        Role::CoHost => "cohost",
        Role::Speaker => "speaker",
        Role::Listener => "listener",
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The sealed media frame in a captured link frame (hex), if it is a room
/// datagram of `tag` carrying media (docs/protocol.md, room datagrams).
fn media_in_frame(hex_frame: &str, tag: [u8; 8]) -> Option<Vec<u8>> {
    let bytes = yonder_wire::from_hex(hex_frame).ok()?;
    let packet = yonder_wire::Packet::decode(&bytes).ok()?;
    if packet.msg_type != yonder_core::ROOM_TYPE {
        return None;
    }
    let p = &packet.payload;
    let (head, rest) = p.split_first_chunk::<8>()?;
    let (&kind, rest) = rest.split_first()?;
    let (&class, payload) = rest.split_first()?;
    (*head == tag && kind == yonder_core::ROOM_DATA && class != 0).then(|| payload.to_vec())
}

/// A member by room-key prefix (hex) or display name.
fn find_member(session: &RoomSession, query: &str) -> Result<MemberKey, Refusal> {
    let st = session.state().ok_or_else(|| local("the room log has not arrived yet"))?;
    let q = query.to_ascii_lowercase();
    let names = session.names();
    let found: Vec<MemberKey> = st
        .members()
        .map(|(k, _)| *k)
        .filter(|k| {
            hex(&k.0).starts_with(&q) || names.get(k).is_some_and(|n| !n.is_empty() && n == query)
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(local(format!("no member {query:?} in the room"))),
        _ => Err(local(format!("{query:?} names several members; give more of the key"))),
    }
}
