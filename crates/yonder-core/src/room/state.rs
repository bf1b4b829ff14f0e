//! The room state every member folds the log into, and the rules it checks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{
    Access, Entry, HANDOVER_STEP_MS, HOST_TIMEOUT_MS, INVITE_TTL_MS, MAX_BANS, MAX_CLOCK_SKEW_MS,
    MAX_COHOSTS, MAX_HANDS, MAX_LOG_KEPT, MAX_MEMBERS, MAX_SCHEDULE_AHEAD_MS, MAX_STAGE, MemberKey,
    Op, Role, RoomError, RoomId, RoomMeta,
};

/// What the room knows about one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Current role.
    pub role: Role,
    /// Sequence number of the member's join (0 for the founding host).
    pub joined_seq: u64,
    /// Sequence number of the entry that last put the member on stage.
    pub stage_since_seq: Option<u64>,
    /// Sequence number of the member's co-host appointment.
    pub cohost_since_seq: Option<u64>,
    /// Whether the microphone is muted. Everyone enters the stage muted.
    pub muted: bool,
    /// Timestamp of an open invitation to speak.
    pub invited_at_ms: Option<u64>,
    /// Whether the member consented to the pending or running recording.
    pub recording_consent: bool,
}

impl Member {
    fn listener(joined_seq: u64) -> Member {
        Member {
            role: Role::Listener,
            joined_seq,
            stage_since_seq: None,
            cohost_since_seq: None,
            muted: true,
            invited_at_ms: None,
            recording_consent: false,
        }
    }

    /// Puts the member on stage under `role`, muted and without consent,
    /// so that a recording can never pick up a voice that did not agree.
    fn enter_stage(&mut self, role: Role, seq: u64) {
        if !self.role.on_stage() {
            self.stage_since_seq = Some(seq);
            self.muted = true;
            self.recording_consent = false;
        }
        self.role = role;
        self.invited_at_ms = None;
    }

    fn leave_stage(&mut self) {
        self.role = Role::Listener;
        self.stage_since_seq = None;
        self.cohost_since_seq = None;
        self.muted = true;
        self.recording_consent = false;
    }
}

/// A room as its log says it is now: metadata, members and roles, the hands
/// queue, bans, recording. Every member computes the same state from the
/// same log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    room: RoomId,
    meta: RoomMeta,
    head_seq: u64,
    head_hash: [u8; 32],
    head_ts: u64,
    members: BTreeMap<MemberKey, Member>,
    host: Option<MemberKey>,
    /// The host's latest entry, or when it left (then `host` is `None`).
    host_seen_ms: u64,
    hands: VecDeque<MemberKey>,
    bans: BTreeSet<MemberKey>,
    recording: bool,
    recording_requested: bool,
    ended: bool,
    log: VecDeque<Entry>,
}

impl RoomState {
    /// Starts a room from its genesis entry, checked against `now_ms`.
    pub fn from_genesis(entry: &Entry, now_ms: u64) -> Result<RoomState, RoomError> {
        let Op::Genesis { meta } = &entry.op else {
            return Err(RoomError::not_allowed(entry.op.name(), "a log opens with a genesis"));
        };
        if entry.seq != 0 {
            return Err(RoomError::Gap { expected: 0, got: entry.seq });
        }
        if entry.prev_hash != [0; 32] {
            return Err(RoomError::BrokenChain);
        }
        check_not_future(entry.timestamp_ms, now_ms)?;
        entry.verify_signature()?;
        check_schedule(meta, None, entry.timestamp_ms)?;
        let host = entry.author_key;
        let mut member = Member::listener(0);
        member.enter_stage(Role::Host, 0);
        let mut log = VecDeque::new();
        log.push_back(entry.clone());
        Ok(RoomState {
            room: entry.room,
            meta: meta.clone(),
            head_seq: 0,
            head_hash: entry.hash()?,
            head_ts: entry.timestamp_ms,
            members: BTreeMap::from([(host, member)]),
            host: Some(host),
            host_seen_ms: entry.timestamp_ms,
            hands: VecDeque::new(),
            bans: BTreeSet::new(),
            recording: false,
            recording_requested: false,
            ended: false,
            log,
        })
    }

    /// Checks `entry` against the log and the rules and, if it passes,
    /// applies it. On error the state is unchanged.
    ///
    /// Order of checks: room, sequence, chain, timestamp, signature, rules.
    pub fn apply(&mut self, entry: &Entry, now_ms: u64) -> Result<(), RoomError> {
        if self.ended {
            return Err(RoomError::Ended);
        }
        if entry.room != self.room {
            return Err(RoomError::WrongRoom);
        }
        if entry.seq <= self.head_seq {
            return Err(RoomError::Replayed { seq: entry.seq, head: self.head_seq });
        }
        if entry.seq != self.head_seq + 1 {
            return Err(RoomError::Gap { expected: self.head_seq + 1, got: entry.seq });
        }
        if entry.prev_hash != self.head_hash {
            return Err(RoomError::BrokenChain);
        }
        if entry.timestamp_ms < self.head_ts {
            return Err(RoomError::TimestampBackwards {
                ts: entry.timestamp_ms,
                previous: self.head_ts,
            });
        }
        check_not_future(entry.timestamp_ms, now_ms)?;
        entry.verify_signature()?;
        let hash = entry.hash()?;
        self.rules(entry, now_ms)?;
        if self.host == Some(entry.author_key) {
            self.host_seen_ms = entry.timestamp_ms;
        }
        self.head_seq = entry.seq;
        self.head_hash = hash;
        self.head_ts = entry.timestamp_ms;
        if self.log.len() == MAX_LOG_KEPT {
            self.log.pop_front();
        }
        self.log.push_back(entry.clone());
        Ok(())
    }

    /// Builds and signs the next entry on this log (sequence and chain
    /// filled in). It is not applied; pass it to [`RoomState::apply`].
    pub fn next_entry(
        &self,
        key: &super::RoomKey,
        op: Op,
        timestamp_ms: u64,
    ) -> Result<Entry, RoomError> {
        Entry::sign(self.room, self.head_seq + 1, self.head_hash, key, op, timestamp_ms)
    }

    /// Checks the rules for `entry` (already authenticated) and applies it.
    /// Every check comes before the first change.
    fn rules(&mut self, entry: &Entry, now_ms: u64) -> Result<(), RoomError> {
        let a = entry.author_key;
        let seq = entry.seq;
        let ts = entry.timestamp_ms;
        let name = entry.op.name();
        if let Op::Join { ticket } = &entry.op {
            if self.members.contains_key(&a) {
                return Err(RoomError::not_allowed(name, "already a member"));
            }
            if self.bans.contains(&a) {
                return Err(RoomError::Banned(a));
            }
            if self.members.len() >= MAX_MEMBERS {
                return Err(RoomError::Full { what: "room", max: MAX_MEMBERS });
            }
            if self.meta.access == Access::InviteOnly {
                let Some(ticket) = ticket else {
                    return Err(RoomError::not_allowed(name, "invite-only and no guest ticket"));
                };
                if !self.role_of(&ticket.issuer).is_some_and(Role::moderates) {
                    return Err(RoomError::not_allowed(name, "ticket issuer is not a host"));
                }
                ticket.verify(self.room, a)?;
            }
            self.members.insert(a, Member::listener(seq));
            return Ok(());
        }
        let me = self.member(&a)?;
        match &entry.op {
            Op::Genesis { .. } => {
                return Err(RoomError::not_allowed(name, "only the first entry is a genesis"));
            }
            Op::Join { .. } => {}
            Op::Leave => {
                self.drop_member(&a);
                if self.host == Some(a) {
                    self.host = None;
                    // The hand-over clock starts now, not a timeout later.
                    self.host_seen_ms = ts.saturating_sub(HOST_TIMEOUT_MS);
                }
            }
            Op::RaiseHand => {
                if me.role != Role::Listener {
                    return Err(RoomError::not_allowed(name, "only listeners raise hands"));
                }
                if self.hands.contains(&a) {
                    return Err(RoomError::not_allowed(name, "hand already raised"));
                }
                if self.hands.len() >= MAX_HANDS {
                    return Err(RoomError::Full { what: "hands queue", max: MAX_HANDS });
                }
                self.hands.push_back(a);
            }
            Op::LowerHand { member } => {
                if *member != a && !me.role.moderates() {
                    return Err(RoomError::not_allowed(name, "only hosts lower others' hands"));
                }
                let Some(at) = self.hands.iter().position(|k| k == member) else {
                    return Err(RoomError::not_allowed(name, "hand not raised"));
                };
                self.hands.remove(at);
            }
            Op::InviteToSpeak { member } => {
                self.require_moderator(me, name)?;
                let them = self.member(member)?;
                if them.role != Role::Listener {
                    return Err(RoomError::not_allowed(name, "already on stage"));
                }
                if them.invited_at_ms.is_some_and(|at| ts <= at.saturating_add(INVITE_TTL_MS)) {
                    return Err(RoomError::not_allowed(name, "already invited"));
                }
                self.require_stage_room()?;
                self.set(member, |m| m.invited_at_ms = Some(ts));
            }
            Op::AcceptInvite => {
                let Some(at) = me.invited_at_ms else {
                    return Err(RoomError::not_allowed(name, "not invited"));
                };
                if me.role != Role::Listener {
                    return Err(RoomError::not_allowed(name, "already on stage"));
                }
                if ts > at.saturating_add(INVITE_TTL_MS) {
                    return Err(RoomError::not_allowed(name, "the invitation expired"));
                }
                self.require_stage_room()?;
                self.hands.retain(|k| *k != a);
                self.set(&a, |m| m.enter_stage(Role::Speaker, seq));
            }
            Op::DeclineInvite => {
                if me.invited_at_ms.is_none() {
                    return Err(RoomError::not_allowed(name, "not invited"));
                }
                self.set(&a, |m| m.invited_at_ms = None);
            }
            Op::SelfMute => {
                if !me.role.on_stage() || me.muted {
                    return Err(RoomError::not_allowed(name, "not an unmuted stage member"));
                }
                self.set(&a, |m| m.muted = true);
            }
            Op::SelfUnmute => {
                if !me.role.on_stage() || !me.muted {
                    return Err(RoomError::not_allowed(name, "not a muted stage member"));
                }
                if self.recording && !me.recording_consent {
                    return Err(RoomError::not_allowed(name, "recording: consent first"));
                }
                self.set(&a, |m| m.muted = false);
            }
            Op::HostMute { member } => {
                self.require_moderator(me, name)?;
                let them = self.member(member)?;
                self.require_outranks(me, them, name)?;
                if !them.role.on_stage() || them.muted {
                    return Err(RoomError::not_allowed(name, "not an unmuted stage member"));
                }
                self.set(member, |m| m.muted = true);
            }
            Op::MoveToAudience { member } => {
                if *member != a && !me.role.moderates() {
                    return Err(RoomError::not_allowed(name, "only hosts move others"));
                }
                let them = self.member(member)?;
                if them.role != Role::Speaker {
                    return Err(RoomError::not_allowed(
                        name,
                        "only speakers move (co-hosts are revoked first)",
                    ));
                }
                self.set(member, Member::leave_stage);
            }
            Op::Remove { member, ban } => {
                self.require_moderator(me, name)?;
                if *member == a {
                    return Err(RoomError::not_allowed(name, "leave instead"));
                }
                match self.members.get(member).copied() {
                    Some(them) => self.require_outranks(me, them, name)?,
                    None if !*ban => return Err(RoomError::NotMember(*member)),
                    None => {}
                }
                if *ban {
                    if self.bans.contains(member) {
                        if !self.members.contains_key(member) {
                            return Err(RoomError::not_allowed(name, "already banned"));
                        }
                    } else if self.bans.len() >= MAX_BANS {
                        return Err(RoomError::Full { what: "ban list", max: MAX_BANS });
                    }
                    self.bans.insert(*member);
                }
                self.drop_member(member);
            }
            Op::Unban { member } => {
                self.require_moderator(me, name)?;
                if !self.bans.remove(member) {
                    return Err(RoomError::not_allowed(name, "not banned"));
                }
            }
            Op::AppointCoHost { member } => {
                self.require_host(me, name)?;
                let them = self.member(member)?;
                if them.role.moderates() {
                    return Err(RoomError::not_allowed(name, "already a host or co-host"));
                }
                if self.count(Role::CoHost) >= MAX_COHOSTS {
                    return Err(RoomError::Full { what: "co-hosts", max: MAX_COHOSTS });
                }
                if !them.role.on_stage() {
                    self.require_stage_room()?;
                }
                self.hands.retain(|k| k != member);
                self.set(member, |m| {
                    m.enter_stage(Role::CoHost, seq);
                    m.cohost_since_seq = Some(seq);
                });
            }
            Op::RevokeCoHost { member } => {
                self.require_host(me, name)?;
                if self.member(member)?.role != Role::CoHost {
                    return Err(RoomError::not_allowed(name, "not a co-host"));
                }
                self.set(member, |m| {
                    m.role = Role::Speaker;
                    m.cohost_since_seq = None;
                });
            }
            Op::RecordingRequest => {
                self.require_host(me, name)?;
                if self.recording || self.recording_requested {
                    return Err(RoomError::not_allowed(name, "already requested or recording"));
                }
                self.recording_requested = true;
                // Fresh consent per request; asking counts as the host's own.
                for (k, m) in self.members.iter_mut() {
                    m.recording_consent = *k == a;
                }
            }
            Op::RecordingConsent => {
                if !me.role.on_stage() {
                    return Err(RoomError::not_allowed(name, "only stage members consent"));
                }
                if !(self.recording || self.recording_requested) || me.recording_consent {
                    return Err(RoomError::not_allowed(name, "nothing to consent to"));
                }
                self.set(&a, |m| m.recording_consent = true);
            }
            Op::RecordingStart => {
                self.require_host(me, name)?;
                if !self.recording_requested {
                    return Err(RoomError::not_allowed(name, "no recording requested"));
                }
                if self.members.values().any(|m| m.role.on_stage() && !m.recording_consent) {
                    return Err(RoomError::not_allowed(name, "a stage member has not consented"));
                }
                self.recording = true;
                self.recording_requested = false;
            }
            Op::RecordingStop => {
                if !me.role.on_stage() {
                    return Err(RoomError::not_allowed(name, "only stage members stop recording"));
                }
                if !(self.recording || self.recording_requested) {
                    return Err(RoomError::not_allowed(name, "not recording"));
                }
                self.recording = false;
                self.recording_requested = false;
                for m in self.members.values_mut() {
                    m.recording_consent = false;
                }
            }
            Op::End => {
                self.require_host(me, name)?;
                self.ended = true;
            }
            Op::HandOver => {
                if self.host == Some(a) {
                    return Err(RoomError::not_allowed(name, "already the host"));
                }
                // No skew allowance here: otherwise a successor could date its
                // hand-over a minute ahead and take over a host that is present.
                if ts > now_ms {
                    return Err(RoomError::TimestampFuture { ts, now: now_ms });
                }
                if self.successor(ts) != Some(a) {
                    return Err(RoomError::not_allowed(name, "not the successor at this time"));
                }
                if !me.role.on_stage() && self.stage_count() >= MAX_STAGE {
                    return Err(RoomError::Full { what: "stage", max: MAX_STAGE });
                }
                if let Some(old) = self.host.take() {
                    self.set(&old, Member::leave_stage);
                }
                self.hands.retain(|k| *k != a);
                self.set(&a, |m| {
                    m.enter_stage(Role::Host, seq);
                    m.cohost_since_seq = None;
                });
                self.host = Some(a);
                self.host_seen_ms = ts;
            }
            Op::UpdateMeta { meta } => {
                self.require_moderator(me, name)?;
                check_schedule(meta, self.meta.scheduled_start_ms, ts)?;
                self.meta = meta.clone();
            }
            Op::Presence => self.require_moderator(me, name)?,
        }
        Ok(())
    }

    /// Who may take over as host at `at_ms`, by the succession rule
    /// (docs/rooms.md, "Host hand-over"): `None` while the host is present.
    pub fn successor(&self, at_ms: u64) -> Option<MemberKey> {
        // A host that left set `host_seen_ms` back by the timeout, so the
        // same sum serves both cases.
        let gone_since = self.host_seen_ms.saturating_add(HOST_TIMEOUT_MS);
        if at_ms < gone_since || self.ended {
            return None;
        }
        let line = self.succession();
        if line.is_empty() {
            return None;
        }
        // Each candidate holds the turn for one step, round and round, so
        // exactly one member may take over at any instant.
        let turn = (at_ms - gone_since) / HANDOVER_STEP_MS;
        let len = line.len() as u64;
        line.get(usize::try_from(turn % len).ok()?).copied()
    }

    /// The line of succession, first candidate first: co-hosts by
    /// appointment, then speakers by when they went on stage, then listeners
    /// by when they joined. The host is not in it.
    pub fn succession(&self) -> Vec<MemberKey> {
        let mut line: Vec<(u8, u64, MemberKey)> = self
            .members
            .iter()
            .filter(|(k, _)| Some(**k) != self.host)
            .map(|(k, m)| match m.role {
                Role::CoHost => (0, m.cohost_since_seq.unwrap_or(m.joined_seq), *k),
                Role::Speaker => (1, m.stage_since_seq.unwrap_or(m.joined_seq), *k),
                Role::Host | Role::Listener => (2, m.joined_seq, *k),
            })
            .collect();
        line.sort();
        line.into_iter().map(|(_, _, k)| k).collect()
    }

    fn member(&self, key: &MemberKey) -> Result<Member, RoomError> {
        self.members.get(key).copied().ok_or(RoomError::NotMember(*key))
    }

    fn set(&mut self, key: &MemberKey, f: impl FnOnce(&mut Member)) {
        if let Some(m) = self.members.get_mut(key) {
            f(m);
        }
    }

    fn drop_member(&mut self, key: &MemberKey) {
        self.members.remove(key);
        self.hands.retain(|k| k != key);
    }

    fn count(&self, role: Role) -> usize {
        self.members.values().filter(|m| m.role == role).count()
    }

    fn stage_count(&self) -> usize {
        self.members.values().filter(|m| m.role.on_stage()).count()
    }

    fn require_stage_room(&self) -> Result<(), RoomError> {
        if self.stage_count() >= MAX_STAGE {
            return Err(RoomError::Full { what: "stage", max: MAX_STAGE });
        }
        Ok(())
    }

    fn require_moderator(&self, me: Member, op: &'static str) -> Result<(), RoomError> {
        if !me.role.moderates() {
            return Err(RoomError::not_allowed(op, "only the host and co-hosts"));
        }
        Ok(())
    }

    fn require_host(&self, me: Member, op: &'static str) -> Result<(), RoomError> {
        if me.role != Role::Host {
            return Err(RoomError::not_allowed(op, "only the host"));
        }
        Ok(())
    }

    /// Nobody acts against the host, and co-hosts not against each other.
    fn require_outranks(
        &self,
        me: Member,
        them: Member,
        op: &'static str,
    ) -> Result<(), RoomError> {
        if them.role == Role::Host || (me.role == Role::CoHost && them.role == Role::CoHost) {
            return Err(RoomError::not_allowed(op, "target outranks or equals the author"));
        }
        Ok(())
    }

    /// The room.
    pub fn room(&self) -> RoomId {
        self.room
    }

    /// Current metadata.
    pub fn meta(&self) -> &RoomMeta {
        &self.meta
    }

    /// Sequence number of the last applied entry.
    pub fn head_seq(&self) -> u64 {
        self.head_seq
    }

    /// Hash of the last applied entry (the next entry's `prev_hash`).
    pub fn head_hash(&self) -> [u8; 32] {
        self.head_hash
    }

    /// The host's room key; `None` after the host left and before a hand-over.
    pub fn host(&self) -> Option<MemberKey> {
        self.host
    }

    /// One member.
    pub fn get(&self, key: &MemberKey) -> Option<&Member> {
        self.members.get(key)
    }

    /// A member's role.
    pub fn role_of(&self, key: &MemberKey) -> Option<Role> {
        self.members.get(key).map(|m| m.role)
    }

    /// Every member, in key order.
    pub fn members(&self) -> impl Iterator<Item = (&MemberKey, &Member)> {
        self.members.iter()
    }

    /// The co-hosts, by appointment.
    pub fn cohosts(&self) -> Vec<MemberKey> {
        let mut out: Vec<_> = self
            .members
            .iter()
            .filter(|(_, m)| m.role == Role::CoHost)
            .map(|(k, m)| (m.cohost_since_seq, *k))
            .collect();
        out.sort();
        out.into_iter().map(|(_, k)| k).collect()
    }

    /// Everyone on stage (host, co-hosts, speakers), in key order.
    pub fn stage(&self) -> Vec<MemberKey> {
        self.members.iter().filter(|(_, m)| m.role.on_stage()).map(|(k, _)| *k).collect()
    }

    /// Raised hands, longest waiting first.
    pub fn hands(&self) -> impl Iterator<Item = &MemberKey> {
        self.hands.iter()
    }

    /// Whether a key is banned.
    pub fn is_banned(&self, key: &MemberKey) -> bool {
        self.bans.contains(key)
    }

    /// Whether the room is being recorded: every UI shows an indicator while
    /// this is true.
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// Whether the host asked for consent to record and has not started yet.
    pub fn recording_requested(&self) -> bool {
        self.recording_requested
    }

    /// Whether the host ended the room.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The most recent entries, oldest first (at most [`MAX_LOG_KEPT`]).
    pub fn recent(&self) -> impl Iterator<Item = &Entry> {
        self.log.iter()
    }
}

fn check_not_future(ts: u64, now_ms: u64) -> Result<(), RoomError> {
    if ts > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(RoomError::TimestampFuture { ts, now: now_ms });
    }
    Ok(())
}

/// A new scheduled start may lie at most 14 days after its entry; an
/// unchanged one is not checked again (it may have passed by now).
fn check_schedule(meta: &RoomMeta, current: Option<u64>, ts: u64) -> Result<(), RoomError> {
    meta.check()?;
    match meta.scheduled_start_ms {
        Some(start) if Some(start) != current => {
            if start > ts.saturating_add(MAX_SCHEDULE_AHEAD_MS) {
                return Err(RoomError::ScheduleTooFar { start, ts });
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
