//! The room log rules: every rule tried by a member who may not, and the
//! allowed paths; the log's chain, signatures and timestamps; the encoding.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use yonder_core::room::{
    Access, Entry, GuestTicket, HANDOVER_STEP_MS, HOST_TIMEOUT_MS, INVITE_TTL_MS, MAX_BANS,
    MAX_ENTRY, MAX_HANDS, MAX_LOG_KEPT, MAX_MEMBERS, MAX_SCHEDULE_AHEAD_MS, MemberKey, Op, Role,
    RoomError, RoomId, RoomKey, RoomMeta, RoomState,
};
use yonder_wire::Fault;

const T0: u64 = 1_700_000_000_000;

/// A room under test: the state, its host's key, a clock and key source.
struct R {
    st: RoomState,
    host: RoomKey,
    t: u64,
    rng: ChaCha8Rng,
}

impl R {
    fn new() -> R {
        R::with_meta(RoomMeta::open("test room"))
    }

    fn with_meta(meta: RoomMeta) -> R {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let host = RoomKey::generate(&mut rng);
        let room = RoomId::random(&mut rng);
        let genesis = Entry::genesis(room, &host, meta, T0).unwrap();
        let st = RoomState::from_genesis(&genesis, T0).unwrap();
        R { st, host, t: T0, rng }
    }

    fn key(&mut self) -> RoomKey {
        RoomKey::generate(&mut self.rng)
    }

    /// Signs `op` as the next entry one second later and applies it.
    fn act(&mut self, k: &RoomKey, op: Op) -> Result<(), RoomError> {
        self.t += 1000;
        let e = self.st.next_entry(k, op, self.t).unwrap();
        self.st.apply(&e, self.t)
    }

    fn ok(&mut self, k: &RoomKey, op: Op) {
        let name = op.name();
        if let Err(e) = self.act(k, op) {
            panic!("{name} refused: {e}");
        }
    }

    /// Expects `op` refused and the state untouched.
    fn deny(&mut self, k: &RoomKey, op: Op) -> RoomError {
        let before = self.st.clone();
        let err = self.act(k, op).unwrap_err();
        assert_eq!(self.st, before, "a refused entry changed the state");
        assert_eq!(err.fault(), Fault::Peer);
        err
    }

    fn host_op(&mut self, op: Op) {
        let host = RoomKey::generate(&mut ChaCha8Rng::seed_from_u64(7));
        self.ok(&host, op);
    }

    fn listener(&mut self) -> RoomKey {
        let k = self.key();
        self.ok(&k, Op::Join { ticket: None });
        k
    }

    fn speaker(&mut self) -> RoomKey {
        let k = self.listener();
        self.host_op(Op::InviteToSpeak { member: k.public() });
        self.ok(&k, Op::AcceptInvite);
        k
    }

    fn cohost(&mut self) -> RoomKey {
        let k = self.listener();
        self.host_op(Op::AppointCoHost { member: k.public() });
        k
    }

    fn role(&self, k: &RoomKey) -> Option<Role> {
        self.st.role_of(&k.public())
    }

    fn muted(&self, k: &RoomKey) -> bool {
        self.st.get(&k.public()).unwrap().muted
    }
}

fn not_allowed(e: RoomError) {
    assert!(matches!(e, RoomError::NotAllowed { .. }), "{e:?}");
}

fn full(e: RoomError) {
    assert!(matches!(e, RoomError::Full { .. }), "{e:?}");
}

fn hp(r: &R) -> MemberKey {
    r.host.public()
}

// ---------------------------------------------------------------- genesis, metadata

#[test]
fn genesis_makes_the_author_host_on_stage_and_muted() {
    let r = R::new();
    assert_eq!(r.st.host(), Some(hp(&r)));
    assert_eq!(r.role(&r.host), Some(Role::Host));
    assert!(r.muted(&r.host));
    assert_eq!(r.st.head_seq(), 0);
    assert!(!r.st.recording());
}

#[test]
fn genesis_must_be_first_and_only_first() {
    let mut r = R::new();
    let host = RoomKey::generate(&mut ChaCha8Rng::seed_from_u64(7));
    not_allowed(r.deny(&host, Op::Genesis { meta: RoomMeta::open("again") }));
    // A non-genesis entry cannot open a log.
    let e = Entry::sign(RoomId([1; 16]), 0, [0; 32], &host, Op::Presence, T0).unwrap();
    assert!(RoomState::from_genesis(&e, T0).is_err());
}

#[test]
fn a_fourth_topic_is_refused() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let key = RoomKey::generate(&mut rng);
    let mut meta = RoomMeta::open("t");
    meta.topics = vec!["a".into(), "b".into(), "c".into(), "d".into()];
    let err = Entry::genesis(RoomId([0; 16]), &key, meta.clone(), T0).unwrap_err();
    assert_eq!(err.fault(), Fault::Local);
    meta.topics.pop();
    Entry::genesis(RoomId([0; 16]), &key, meta, T0).unwrap();
}

#[test]
fn title_description_and_topic_lengths_are_capped() {
    let key = RoomKey::generate(&mut ChaCha8Rng::seed_from_u64(1));
    let room = RoomId([0; 16]);
    for meta in [
        RoomMeta { title: "x".repeat(101), ..RoomMeta::open("") },
        RoomMeta { description: "x".repeat(501), ..RoomMeta::open("") },
        RoomMeta { topics: vec!["x".repeat(33)], ..RoomMeta::open("") },
    ] {
        assert!(meta.check().is_err());
        assert_eq!(Entry::genesis(room, &key, meta, T0).unwrap_err().fault(), Fault::Local);
    }
    let biggest = RoomMeta {
        title: "x".repeat(100),
        description: "y".repeat(500),
        topics: vec!["z".repeat(32); 3],
        scheduled_start_ms: Some(T0),
        access: Access::InviteOnly,
    };
    let e = Entry::genesis(room, &key, biggest, T0).unwrap();
    // The largest entry there can be, as docs/rooms.md states.
    assert_eq!(e.encode().unwrap().len(), 879);
    const { assert!(879 <= MAX_ENTRY) };
}

#[test]
fn a_schedule_15_days_ahead_is_refused_14_days_allowed() {
    let key = RoomKey::generate(&mut ChaCha8Rng::seed_from_u64(1));
    let room = RoomId([0; 16]);
    let day = 24 * 3600 * 1000;
    let far = RoomMeta { scheduled_start_ms: Some(T0 + 15 * day), ..RoomMeta::open("t") };
    let e = Entry::genesis(room, &key, far.clone(), T0).unwrap();
    assert!(matches!(RoomState::from_genesis(&e, T0), Err(RoomError::ScheduleTooFar { .. })));
    let ok = RoomMeta { scheduled_start_ms: Some(T0 + MAX_SCHEDULE_AHEAD_MS), ..far.clone() };
    RoomState::from_genesis(&Entry::genesis(room, &key, ok, T0).unwrap(), T0).unwrap();

    let mut r = R::new();
    let bad = RoomMeta { scheduled_start_ms: Some(r.t + 1000 + 15 * day), ..far };
    let host = RoomKey::generate(&mut ChaCha8Rng::seed_from_u64(7));
    assert!(matches!(
        r.deny(&host, Op::UpdateMeta { meta: bad }),
        RoomError::ScheduleTooFar { .. }
    ));
}

#[test]
fn metadata_is_updated_by_hosts_only() {
    let mut r = R::new();
    let l = r.listener();
    let s = r.speaker();
    let c = r.cohost();
    let meta = RoomMeta { topics: vec!["rust".into()], ..RoomMeta::open("new title") };
    not_allowed(r.deny(&l, Op::UpdateMeta { meta: meta.clone() }));
    not_allowed(r.deny(&s, Op::UpdateMeta { meta: meta.clone() }));
    r.ok(&c, Op::UpdateMeta { meta: meta.clone() });
    assert_eq!(r.st.meta(), &meta);
}

// ---------------------------------------------------------------- joining, bans

#[test]
fn joining_an_open_room_and_twice() {
    let mut r = R::new();
    let l = r.listener();
    assert_eq!(r.role(&l), Some(Role::Listener));
    assert!(r.muted(&l));
    not_allowed(r.deny(&l, Op::Join { ticket: None }));
}

#[test]
fn invite_only_needs_a_ticket_from_a_current_host() {
    let mut r = R::with_meta(RoomMeta { access: Access::InviteOnly, ..RoomMeta::open("private") });
    let room = r.st.room();
    let guest = r.key();
    not_allowed(r.deny(&guest, Op::Join { ticket: None }));

    // A ticket for someone else does not transfer.
    let other = r.key();
    let ticket = GuestTicket::issue(room, &r.host, other.public());
    assert!(matches!(
        r.deny(&guest, Op::Join { ticket: Some(ticket) }),
        RoomError::BadSignature { .. }
    ));
    // A ticket from a non-member, or from a mere listener, is refused.
    let stranger = r.key();
    let ticket = GuestTicket::issue(room, &stranger, guest.public());
    not_allowed(r.deny(&guest, Op::Join { ticket: Some(ticket) }));

    let ticket = GuestTicket::issue(room, &r.host, guest.public());
    r.ok(&guest, Op::Join { ticket: Some(ticket) });
    assert_eq!(r.role(&guest), Some(Role::Listener));
    let listener_ticket = GuestTicket::issue(room, &guest, other.public());
    not_allowed(r.deny(&other, Op::Join { ticket: Some(listener_ticket) }));

    // A co-host's ticket counts while the appointment lasts.
    r.host_op(Op::AppointCoHost { member: guest.public() });
    let ticket = GuestTicket::issue(room, &guest, other.public());
    r.host_op(Op::RevokeCoHost { member: guest.public() });
    not_allowed(r.deny(&other, Op::Join { ticket: Some(ticket) }));
    r.host_op(Op::AppointCoHost { member: guest.public() });
    r.ok(&other, Op::Join { ticket: Some(ticket) });
}

#[test]
fn a_banned_member_cannot_rejoin_until_unbanned() {
    let mut r = R::new();
    let l = r.listener();
    r.host_op(Op::Remove { member: l.public(), ban: true });
    assert_eq!(r.role(&l), None);
    assert!(r.st.is_banned(&l.public()));
    assert_eq!(r.deny(&l, Op::Join { ticket: None }), RoomError::Banned(l.public()));
    r.host_op(Op::Unban { member: l.public() });
    r.ok(&l, Op::Join { ticket: None });
}

#[test]
fn removal_without_ban_allows_rejoining() {
    let mut r = R::new();
    let l = r.listener();
    r.host_op(Op::Remove { member: l.public(), ban: false });
    assert_eq!(r.role(&l), None);
    r.ok(&l, Op::Join { ticket: None });
}

#[test]
fn removal_rules() {
    let mut r = R::new();
    let l = r.listener();
    let s = r.speaker();
    let c1 = r.cohost();
    let c2 = r.cohost();
    not_allowed(r.deny(&l, Op::Remove { member: s.public(), ban: false }));
    not_allowed(r.deny(&s, Op::Remove { member: l.public(), ban: false }));
    not_allowed(r.deny(&c1, Op::Remove { member: hp(&r), ban: true }));
    not_allowed(r.deny(&c1, Op::Remove { member: c2.public(), ban: true }));
    not_allowed(r.deny(&c1, Op::Remove { member: c1.public(), ban: false }));
    r.ok(&c1, Op::Remove { member: s.public(), ban: false });
    r.host_op(Op::Remove { member: c2.public(), ban: false });
    assert_eq!(r.st.cohosts(), vec![c1.public()]);
    // Removing someone absent needs a ban (a pre-emptive one).
    let absent = r.key().public();
    assert_eq!(
        r.deny(&c1, Op::Remove { member: absent, ban: false }),
        RoomError::NotMember(absent)
    );
    r.ok(&c1, Op::Remove { member: absent, ban: true });
    not_allowed(r.deny(&c1, Op::Remove { member: absent, ban: true }));
    not_allowed(r.deny(&l, Op::Unban { member: absent }));
    not_allowed(r.deny(&c1, Op::Unban { member: l.public() }));
}

#[test]
fn the_ban_list_is_capped() {
    let mut r = R::new();
    for i in 0..MAX_BANS {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&(i as u64).to_be_bytes());
        r.host_op(Op::Remove { member: MemberKey(k), ban: true });
    }
    let host = RoomKey::generate(&mut ChaCha8Rng::seed_from_u64(7));
    full(r.deny(&host, Op::Remove { member: MemberKey([0xff; 32]), ban: true }));
}

#[test]
fn members_are_capped() {
    let mut r = R::new();
    for _ in 1..MAX_MEMBERS {
        r.listener();
    }
    let k = r.key();
    full(r.deny(&k, Op::Join { ticket: None }));
}

#[test]
fn strangers_cannot_act() {
    let mut r = R::new();
    let k = r.key();
    for op in [Op::RaiseHand, Op::Leave, Op::Presence, Op::End, Op::HandOver] {
        assert_eq!(r.deny(&k, op), RoomError::NotMember(k.public()));
    }
}

// ---------------------------------------------------------------- hands

#[test]
fn hands_queue_is_fifo_and_visible() {
    let mut r = R::new();
    let a = r.listener();
    let b = r.listener();
    let c = r.listener();
    r.ok(&b, Op::RaiseHand);
    r.ok(&a, Op::RaiseHand);
    r.ok(&c, Op::RaiseHand);
    let q: Vec<_> = r.st.hands().copied().collect();
    assert_eq!(q, vec![b.public(), a.public(), c.public()]);
    not_allowed(r.deny(&a, Op::RaiseHand));
    r.ok(&a, Op::LowerHand { member: a.public() });
    // Only hosts lower someone else's hand.
    not_allowed(r.deny(&c, Op::LowerHand { member: b.public() }));
    r.host_op(Op::LowerHand { member: b.public() });
    assert_eq!(r.st.hands().copied().collect::<Vec<_>>(), vec![c.public()]);
    not_allowed(r.deny(&a, Op::LowerHand { member: a.public() }));
}

#[test]
fn stage_members_do_not_raise_hands() {
    let mut r = R::new();
    let s = r.speaker();
    not_allowed(r.deny(&s, Op::RaiseHand));
    not_allowed(r.deny(&r.host_key(), Op::RaiseHand));
}

#[test]
fn hands_queue_is_capped() {
    let mut r = R::new();
    for _ in 0..MAX_HANDS {
        let k = r.listener();
        r.ok(&k, Op::RaiseHand);
    }
    let k = r.listener();
    full(r.deny(&k, Op::RaiseHand));
}

#[test]
fn accepting_an_invitation_takes_the_hand_down() {
    let mut r = R::new();
    let l = r.listener();
    r.ok(&l, Op::RaiseHand);
    r.host_op(Op::InviteToSpeak { member: l.public() });
    r.ok(&l, Op::AcceptInvite);
    assert_eq!(r.st.hands().count(), 0);
    assert_eq!(r.role(&l), Some(Role::Speaker));
    assert!(r.muted(&l), "speakers enter the stage muted");
}

// ---------------------------------------------------------------- invitations

#[test]
fn only_hosts_invite_and_only_the_invited_accept() {
    let mut r = R::new();
    let l = r.listener();
    let m = r.listener();
    let s = r.speaker();
    not_allowed(r.deny(&l, Op::InviteToSpeak { member: m.public() }));
    not_allowed(r.deny(&s, Op::InviteToSpeak { member: m.public() }));
    not_allowed(r.deny(&m, Op::AcceptInvite));
    not_allowed(r.deny(&m, Op::DeclineInvite));
    let c = r.cohost();
    r.ok(&c, Op::InviteToSpeak { member: m.public() });
    not_allowed(r.deny(&c, Op::InviteToSpeak { member: m.public() }));
    not_allowed(r.deny(&c, Op::InviteToSpeak { member: s.public() }));
    // Someone else cannot accept on m's behalf.
    not_allowed(r.deny(&l, Op::AcceptInvite));
    r.ok(&m, Op::DeclineInvite);
    assert_eq!(r.role(&m), Some(Role::Listener));
    not_allowed(r.deny(&m, Op::AcceptInvite));
}

#[test]
fn an_expired_invitation_cannot_be_accepted() {
    let mut r = R::new();
    let l = r.listener();
    r.host_op(Op::InviteToSpeak { member: l.public() });
    r.t += INVITE_TTL_MS;
    not_allowed(r.deny(&l, Op::AcceptInvite));
    // After expiry the host may invite again.
    r.host_op(Op::InviteToSpeak { member: l.public() });
    r.ok(&l, Op::AcceptInvite);
}

#[test]
fn a_14th_speaker_is_refused() {
    let mut r = R::new();
    r.cohost();
    let waiting = r.listener();
    r.host_op(Op::InviteToSpeak { member: waiting.public() });
    while r.st.stage().len() < 13 {
        r.speaker();
    }
    assert_eq!(r.st.stage().len(), 13);
    let l = r.listener();
    full(r.deny(&r.host_key(), Op::InviteToSpeak { member: l.public() }));
    // An invitation made while there was room does not overfill the stage.
    full(r.deny(&waiting, Op::AcceptInvite));
    // Nor does appointing a listener co-host.
    full(r.deny(&r.host_key(), Op::AppointCoHost { member: l.public() }));
}

// ---------------------------------------------------------------- muting

#[test]
fn speakers_mute_and_unmute_themselves() {
    let mut r = R::new();
    let s = r.speaker();
    not_allowed(r.deny(&s, Op::SelfMute));
    r.ok(&s, Op::SelfUnmute);
    assert!(!r.muted(&s));
    not_allowed(r.deny(&s, Op::SelfUnmute));
    r.ok(&s, Op::SelfMute);
    assert!(r.muted(&s));
    let l = r.listener();
    not_allowed(r.deny(&l, Op::SelfUnmute));
}

#[test]
fn hosts_mute_but_only_the_speaker_unmutes() {
    let mut r = R::new();
    let s = r.speaker();
    let c = r.cohost();
    let l = r.listener();
    r.ok(&s, Op::SelfUnmute);
    not_allowed(r.deny(&l, Op::HostMute { member: s.public() }));
    r.ok(&c, Op::HostMute { member: s.public() });
    assert!(r.muted(&s));
    // There is no op to unmute someone else: a host's unmute is its own.
    r.host_op(Op::SelfUnmute);
    assert!(r.muted(&s));
    assert!(!r.st.get(&hp(&r)).unwrap().muted);
    r.ok(&s, Op::SelfUnmute);
    assert!(!r.muted(&s));
}

#[test]
fn nobody_mutes_the_host_and_co_hosts_not_each_other() {
    let mut r = R::new();
    let c1 = r.cohost();
    let c2 = r.cohost();
    r.host_op(Op::SelfUnmute);
    r.ok(&c2, Op::SelfUnmute);
    not_allowed(r.deny(&c1, Op::HostMute { member: hp(&r) }));
    not_allowed(r.deny(&c1, Op::HostMute { member: c2.public() }));
    r.host_op(Op::HostMute { member: c2.public() });
    not_allowed(r.deny(&r.host_key(), Op::HostMute { member: c2.public() }));
}

// ---------------------------------------------------------------- audience

#[test]
fn moving_to_the_audience() {
    let mut r = R::new();
    let s1 = r.speaker();
    let s2 = r.speaker();
    let l = r.listener();
    let c = r.cohost();
    not_allowed(r.deny(&l, Op::MoveToAudience { member: s1.public() }));
    not_allowed(r.deny(&s2, Op::MoveToAudience { member: s1.public() }));
    r.ok(&s1, Op::MoveToAudience { member: s1.public() });
    assert_eq!(r.role(&s1), Some(Role::Listener));
    r.ok(&c, Op::MoveToAudience { member: s2.public() });
    assert_eq!(r.role(&s2), Some(Role::Listener));
    not_allowed(r.deny(&r.host_key(), Op::MoveToAudience { member: c.public() }));
    not_allowed(r.deny(&c, Op::MoveToAudience { member: hp(&r) }));
    not_allowed(r.deny(&c, Op::MoveToAudience { member: l.public() }));
}

// ---------------------------------------------------------------- co-hosts, end

#[test]
fn only_the_host_appoints_and_revokes_co_hosts() {
    let mut r = R::new();
    let l = r.listener();
    let m = r.listener();
    let s = r.speaker();
    not_allowed(r.deny(&l, Op::AppointCoHost { member: m.public() }));
    not_allowed(r.deny(&s, Op::AppointCoHost { member: s.public() }));
    let c = r.cohost();
    not_allowed(r.deny(&c, Op::AppointCoHost { member: m.public() }));
    r.host_op(Op::AppointCoHost { member: s.public() });
    assert_eq!(r.st.cohosts(), vec![c.public(), s.public()]);
    not_allowed(r.deny(&c, Op::RevokeCoHost { member: s.public() }));
    r.host_op(Op::RevokeCoHost { member: s.public() });
    assert_eq!(r.role(&s), Some(Role::Speaker));
    not_allowed(r.deny(&r.host_key(), Op::RevokeCoHost { member: s.public() }));
}

#[test]
fn a_third_co_host_is_refused() {
    let mut r = R::new();
    r.cohost();
    r.cohost();
    let l = r.listener();
    full(r.deny(&r.host_key(), Op::AppointCoHost { member: l.public() }));
}

#[test]
fn a_listener_appointed_co_host_goes_on_stage_muted() {
    let mut r = R::new();
    let c = r.cohost();
    assert_eq!(r.role(&c), Some(Role::CoHost));
    assert!(r.muted(&c));
    assert!(r.st.stage().contains(&c.public()));
}

#[test]
fn only_the_host_ends_the_room_and_nothing_follows() {
    let mut r = R::new();
    let c = r.cohost();
    let s = r.speaker();
    not_allowed(r.deny(&c, Op::End));
    not_allowed(r.deny(&s, Op::End));
    r.host_op(Op::End);
    assert!(r.st.ended());
    assert_eq!(r.act(&s, Op::Leave), Err(RoomError::Ended));
    assert_eq!(r.st.successor(u64::MAX), None);
}

#[test]
fn presence_is_for_hosts() {
    let mut r = R::new();
    let l = r.listener();
    let c = r.cohost();
    not_allowed(r.deny(&l, Op::Presence));
    r.ok(&c, Op::Presence);
    r.host_op(Op::Presence);
}

// ---------------------------------------------------------------- hand-over

#[test]
fn hand_over_goes_to_the_longest_serving_co_host_after_the_timeout() {
    let mut r = R::new();
    let s = r.speaker();
    let c1 = r.cohost();
    let c2 = r.cohost();
    r.host_op(Op::Presence);
    let seen = r.t;
    assert_eq!(r.st.succession()[..3], [c1.public(), c2.public(), s.public()]);
    // Too early: the host may just be quiet.
    r.t = seen + HOST_TIMEOUT_MS - 2000;
    not_allowed(r.deny(&c1, Op::HandOver));
    assert_eq!(r.st.successor(seen + HOST_TIMEOUT_MS - 1), None);
    assert_eq!(r.st.successor(seen + HOST_TIMEOUT_MS), Some(c1.public()));
    r.t = seen + HOST_TIMEOUT_MS;
    // The wrong successor is refused.
    not_allowed(r.deny(&c2, Op::HandOver));
    not_allowed(r.deny(&s, Op::HandOver));
    r.ok(&c1, Op::HandOver);
    assert_eq!(r.st.host(), Some(c1.public()));
    assert_eq!(r.role(&c1), Some(Role::Host));
    assert_eq!(r.role(&r.host_key()), Some(Role::Listener));
    assert_eq!(r.st.cohosts(), vec![c2.public()]);
    // The new host holds the host's powers; the old one no longer does.
    not_allowed(r.deny(&r.host_key(), Op::End));
    r.ok(&c1, Op::AppointCoHost { member: s.public() });
}

#[test]
fn a_hand_over_cannot_be_dated_ahead() {
    let mut r = R::new();
    let c = r.cohost();
    r.host_op(Op::Presence);
    // Within the general skew, but the host was heard just now.
    let ts = r.t + HOST_TIMEOUT_MS;
    let e = r.st.next_entry(&c, Op::HandOver, ts).unwrap();
    assert!(matches!(r.st.apply(&e, r.t), Err(RoomError::TimestampFuture { .. })));
    assert_eq!(r.st.host(), Some(hp(&r)));
    // Once the checker's clock reaches it, it is valid.
    r.st.apply(&e, ts).unwrap();
    assert_eq!(r.st.host(), Some(c.public()));
}

#[test]
fn the_next_successor_gets_the_following_turn() {
    let mut r = R::new();
    let c1 = r.cohost();
    let c2 = r.cohost();
    r.host_op(Op::Presence);
    let gone = r.t + HOST_TIMEOUT_MS;
    assert_eq!(r.st.successor(gone + HANDOVER_STEP_MS - 1), Some(c1.public()));
    assert_eq!(r.st.successor(gone + HANDOVER_STEP_MS), Some(c2.public()));
    r.t = gone + HANDOVER_STEP_MS;
    not_allowed(r.deny(&c1, Op::HandOver));
    r.ok(&c2, Op::HandOver);
    assert_eq!(r.st.host(), Some(c2.public()));
}

#[test]
fn without_co_hosts_the_earliest_speaker_then_the_earliest_listener_succeeds() {
    let mut r = R::new();
    let l = r.listener();
    let s1 = r.speaker();
    let s2 = r.speaker();
    assert_eq!(r.st.succession(), vec![s1.public(), s2.public(), l.public()]);
    r.t += HOST_TIMEOUT_MS;
    not_allowed(r.deny(&l, Op::HandOver));
    not_allowed(r.deny(&s2, Op::HandOver));
    r.ok(&s1, Op::HandOver);

    let mut r = R::new();
    let l1 = r.listener();
    let l2 = r.listener();
    r.t += HOST_TIMEOUT_MS;
    not_allowed(r.deny(&l2, Op::HandOver));
    r.ok(&l1, Op::HandOver);
    assert_eq!(r.role(&l1), Some(Role::Host));
}

#[test]
fn host_activity_keeps_the_hand_over_away() {
    let mut r = R::new();
    let c = r.cohost();
    r.t += HOST_TIMEOUT_MS - 5000;
    r.host_op(Op::Presence);
    r.t += HOST_TIMEOUT_MS - 5000;
    not_allowed(r.deny(&c, Op::HandOver));
}

#[test]
fn a_host_that_leaves_is_succeeded_at_once() {
    let mut r = R::new();
    let c = r.cohost();
    r.host_op(Op::Leave);
    assert_eq!(r.st.host(), None);
    r.ok(&c, Op::HandOver);
    assert_eq!(r.st.host(), Some(c.public()));
    not_allowed(r.deny(&c, Op::HandOver));
}

#[test]
fn every_replica_picks_the_same_successor() {
    let mut r = R::new();
    r.cohost();
    r.speaker();
    r.listener();
    let copy = r.st.clone();
    for dt in (0..10).map(|i| i * 17_000) {
        assert_eq!(r.st.successor(r.t + dt), copy.successor(r.t + dt));
    }
    // Replaying the recent log from its genesis gives the same state.
    let mut entries = r.st.recent();
    let mut replay = RoomState::from_genesis(entries.next().unwrap(), r.t).unwrap();
    for e in entries {
        replay.apply(e, r.t).unwrap();
    }
    assert_eq!(replay, r.st);
}

// ---------------------------------------------------------------- recording

#[test]
fn recording_needs_the_host_and_every_speakers_consent() {
    let mut r = R::new();
    let s = r.speaker();
    let c = r.cohost();
    let l = r.listener();
    not_allowed(r.deny(&s, Op::RecordingRequest));
    not_allowed(r.deny(&c, Op::RecordingRequest));
    not_allowed(r.deny(&r.host_key(), Op::RecordingStart));
    not_allowed(r.deny(&s, Op::RecordingConsent));
    r.host_op(Op::RecordingRequest);
    assert!(r.st.recording_requested());
    not_allowed(r.deny(&l, Op::RecordingConsent));
    r.ok(&s, Op::RecordingConsent);
    not_allowed(r.deny(&s, Op::RecordingConsent));
    // The co-host has not consented yet.
    not_allowed(r.deny(&r.host_key(), Op::RecordingStart));
    assert!(!r.st.recording());
    r.ok(&c, Op::RecordingConsent);
    not_allowed(r.deny(&c, Op::RecordingStart));
    r.host_op(Op::RecordingStart);
    assert!(r.st.recording());
}

#[test]
fn a_new_speaker_cannot_unmute_into_a_recording_without_consent() {
    let mut r = R::new();
    r.host_op(Op::RecordingRequest);
    r.host_op(Op::RecordingStart);
    assert!(r.st.recording());
    let s = r.speaker();
    not_allowed(r.deny(&s, Op::SelfUnmute));
    r.ok(&s, Op::RecordingConsent);
    r.ok(&s, Op::SelfUnmute);
    // Leaving the stage forgets consent; coming back asks again.
    r.ok(&s, Op::MoveToAudience { member: s.public() });
    r.host_op(Op::InviteToSpeak { member: s.public() });
    r.ok(&s, Op::AcceptInvite);
    not_allowed(r.deny(&s, Op::SelfUnmute));
    let c = r.cohost();
    not_allowed(r.deny(&c, Op::SelfUnmute));
}

#[test]
fn any_stage_member_stops_a_recording() {
    let mut r = R::new();
    let s = r.speaker();
    let l = r.listener();
    not_allowed(r.deny(&s, Op::RecordingStop));
    r.host_op(Op::RecordingRequest);
    r.ok(&s, Op::RecordingConsent);
    r.host_op(Op::RecordingStart);
    not_allowed(r.deny(&l, Op::RecordingStop));
    r.ok(&s, Op::RecordingStop);
    assert!(!r.st.recording());
    // A later request asks everyone again.
    r.host_op(Op::RecordingRequest);
    not_allowed(r.deny(&r.host_key(), Op::RecordingStart));
}

// ---------------------------------------------------------------- the log itself

#[test]
fn a_forged_signature_is_refused() {
    let mut r = R::new();
    let l = r.listener();
    let mut e = r.st.next_entry(&l, Op::RaiseHand, r.t + 1).unwrap();
    e.signature[10] ^= 1;
    let before = r.st.clone();
    assert_eq!(r.st.apply(&e, r.t + 1), Err(RoomError::BadSignature { what: "entry" }));
    // Claiming the host's key on a listener's signature.
    let mut e = r.st.next_entry(&l, Op::End, r.t + 1).unwrap();
    e.author_key = hp(&r);
    assert!(matches!(r.st.apply(&e, r.t + 1), Err(RoomError::BadSignature { .. })));
    // Changing the op after signing.
    let mut e = r.st.next_entry(&l, Op::RaiseHand, r.t + 1).unwrap();
    e.op = Op::End;
    assert!(matches!(r.st.apply(&e, r.t + 1), Err(RoomError::BadSignature { .. })));
    assert_eq!(r.st, before);
}

#[test]
fn an_invalid_author_key_is_refused() {
    let mut r = R::new();
    let l = r.listener();
    let mut e = r.st.next_entry(&l, Op::RaiseHand, r.t + 1).unwrap();
    e.author_key = MemberKey([0; 32]);
    let err = r.st.apply(&e, r.t + 1).unwrap_err();
    assert!(matches!(err, RoomError::BadKey | RoomError::BadSignature { .. }), "{err:?}");
}

#[test]
fn replayed_and_out_of_order_entries_are_refused() {
    let mut r = R::new();
    let l = r.listener();
    let e1 = r.st.next_entry(&l, Op::RaiseHand, r.t + 1).unwrap();
    r.st.apply(&e1, r.t + 1).unwrap();
    assert!(matches!(r.st.apply(&e1, r.t + 1), Err(RoomError::Replayed { .. })));
    let e2 = r.st.next_entry(&l, Op::LowerHand { member: l.public() }, r.t + 2).unwrap();
    let e3 = Entry::sign(r.st.room(), e2.seq + 1, [9; 32], &l, Op::RaiseHand, r.t + 3).unwrap();
    assert!(matches!(r.st.apply(&e3, r.t + 3), Err(RoomError::Gap { .. })));
    r.st.apply(&e2, r.t + 2).unwrap();
    // A competing entry for a slot already filled is a replay too.
    let rival = Entry::sign(r.st.room(), e2.seq, e2.prev_hash, &l, Op::Leave, r.t + 2).unwrap();
    assert!(matches!(r.st.apply(&rival, r.t + 2), Err(RoomError::Replayed { .. })));
}

#[test]
fn a_broken_hash_chain_is_refused() {
    let mut r = R::new();
    let l = r.listener();
    let mut prev = r.st.head_hash();
    prev[0] ^= 1;
    let e = Entry::sign(r.st.room(), r.st.head_seq() + 1, prev, &l, Op::RaiseHand, r.t).unwrap();
    assert_eq!(r.st.apply(&e, r.t), Err(RoomError::BrokenChain));
}

#[test]
fn an_entry_for_another_room_is_refused() {
    let mut r = R::new();
    let l = r.listener();
    let e = Entry::sign(RoomId([3; 16]), r.st.head_seq() + 1, r.st.head_hash(), &l, Op::Leave, r.t)
        .unwrap();
    assert_eq!(r.st.apply(&e, r.t), Err(RoomError::WrongRoom));
}

#[test]
fn timestamps_must_not_go_back_or_run_ahead() {
    let mut r = R::new();
    let l = r.listener();
    let e = r.st.next_entry(&l, Op::RaiseHand, r.t - 1).unwrap();
    assert!(matches!(r.st.apply(&e, r.t), Err(RoomError::TimestampBackwards { .. })));
    let e = r.st.next_entry(&l, Op::RaiseHand, r.t + 61_000).unwrap();
    assert!(matches!(r.st.apply(&e, r.t), Err(RoomError::TimestampFuture { .. })));
    let e = r.st.next_entry(&l, Op::RaiseHand, r.t + 60_000).unwrap();
    r.st.apply(&e, r.t).unwrap();
}

#[test]
fn the_log_kept_in_memory_is_bounded() {
    let mut r = R::new();
    let c = r.cohost();
    for _ in 0..MAX_LOG_KEPT + 10 {
        r.ok(&c, Op::Presence);
    }
    assert_eq!(r.st.recent().count(), MAX_LOG_KEPT);
    assert_eq!(r.st.recent().last().unwrap().seq, r.st.head_seq());
}

// ---------------------------------------------------------------- encoding

#[allow(clippy::unwrap_used)]
fn every_op(r: &mut R) -> Vec<Op> {
    let k = r.key().public();
    let ticket = GuestTicket::issue(r.st.room(), &r.host, k);
    vec![
        Op::Genesis {
            meta: RoomMeta {
                title: "t".into(),
                description: "déjà".into(),
                topics: vec!["a".into(), "b".into()],
                scheduled_start_ms: Some(T0 + 5),
                access: Access::InviteOnly,
            },
        },
        Op::Join { ticket: None },
        Op::Join { ticket: Some(ticket) },
        Op::Leave,
        Op::RaiseHand,
        Op::LowerHand { member: k },
        Op::InviteToSpeak { member: k },
        Op::AcceptInvite,
        Op::DeclineInvite,
        Op::SelfMute,
        Op::SelfUnmute,
        Op::HostMute { member: k },
        Op::MoveToAudience { member: k },
        Op::Remove { member: k, ban: true },
        Op::Remove { member: k, ban: false },
        Op::Unban { member: k },
        Op::AppointCoHost { member: k },
        Op::RevokeCoHost { member: k },
        Op::RecordingRequest,
        Op::RecordingConsent,
        Op::RecordingStart,
        Op::RecordingStop,
        Op::End,
        Op::HandOver,
        Op::UpdateMeta { meta: RoomMeta::open("") },
        Op::Presence,
    ]
}

#[test]
fn every_op_round_trips_and_truncations_fail() {
    let mut r = R::new();
    let host = RoomKey::generate(&mut ChaCha8Rng::seed_from_u64(7));
    for op in every_op(&mut r) {
        let e = r.st.next_entry(&host, op, T0).unwrap();
        let bytes = e.encode().unwrap();
        assert!(bytes.len() <= MAX_ENTRY);
        let back = Entry::decode(&bytes).unwrap();
        assert_eq!(back, e);
        back.verify_signature().unwrap();
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Entry::decode(&longer).is_err());
    }
}

#[test]
fn version_and_unknown_ops_are_incompatible_malformed_flags_are_peer_faults() {
    let mut r = R::new();
    let e = r.st.next_entry(&r.host_key(), Op::Remove { member: hp(&r), ban: true }, T0).unwrap();
    let bytes = e.encode().unwrap();
    let mut v = bytes.clone();
    v[0] = 2;
    assert_eq!(Entry::decode(&v).unwrap_err().fault(), Fault::Incompatible);
    let op_at = 1 + 16 + 8 + 32 + 32 + 8;
    let mut u = bytes.clone();
    u[op_at] = 0xee;
    assert_eq!(Entry::decode(&u).unwrap_err(), RoomError::UnknownOp(0xee));
    let mut f = bytes.clone();
    f[op_at + 1 + 32] = 2;
    assert_eq!(Entry::decode(&f).unwrap_err().fault(), Fault::Peer);
    assert_eq!(Entry::decode(&vec![1; MAX_ENTRY + 1]).unwrap_err().fault(), Fault::Peer);
    let _ = &mut r;
}

#[test]
fn faults_follow_the_taxonomy() {
    let key = RoomKey::generate(&mut ChaCha8Rng::seed_from_u64(1));
    let too_long = RoomMeta::open(&"x".repeat(200));
    let local = Entry::genesis(RoomId([0; 16]), &key, too_long, T0).unwrap_err();
    assert!(matches!(local, RoomError::Unencodable { .. }));
    assert_eq!(local.fault(), Fault::Local);
    assert_eq!(RoomError::UnsupportedVersion(9).fault(), Fault::Incompatible);
    assert_eq!(RoomError::UnknownOp(0x99).fault(), Fault::Incompatible);
    for e in [
        RoomError::BrokenChain,
        RoomError::BadKey,
        RoomError::Ended,
        RoomError::Gap { expected: 1, got: 3 },
        RoomError::Full { what: "stage", max: 13 },
        RoomError::ScheduleTooFar { start: 0, ts: 0 },
    ] {
        assert_eq!(e.fault(), Fault::Peer);
    }
}

#[test]
fn room_keys_are_fresh_per_room() {
    // Two rooms joined from one device share nothing on the air.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let node = yonder_crypto::Identity::generate(&mut rng);
    let a = RoomKey::generate(&mut rng).public();
    let b = RoomKey::generate(&mut rng).public();
    assert_ne!(a, b);
    assert_ne!(a.0, node.signing_public());
}

#[test]
fn hash_names_the_encoding() {
    let r = R::new();
    let first = r.st.recent().next().unwrap();
    assert_eq!(first.hash().unwrap(), r.st.head_hash());
}

proptest! {
    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
        let _ = Entry::decode(&bytes);
    }

    #[test]
    fn decoding_mutated_entries_never_panics(
        which in 0usize..26,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut r = R::new();
        let host = RoomKey::generate(&mut ChaCha8Rng::seed_from_u64(7));
        let ops = every_op(&mut r);
        let op = ops[which % ops.len()].clone();
        let mut bytes = r.st.next_entry(&host, op, T0).unwrap().encode().unwrap();
        for (at, x) in flips {
            let at = at % bytes.len();
            bytes[at] ^= x;
        }
        if let Ok(e) = Entry::decode(&bytes) {
            // Whatever decodes re-encodes to the same bytes (one encoding each).
            prop_assert_eq!(e.encode().unwrap(), bytes);
            let _ = r.st.clone().apply(&e, T0);
        }
    }
}

impl R {
    fn host_key(&self) -> RoomKey {
        RoomKey::generate(&mut ChaCha8Rng::seed_from_u64(7))
    }
}
