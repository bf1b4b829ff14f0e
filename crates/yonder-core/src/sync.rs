//! Gossip sync with REQUEST_SYNC and GCS filters, as Bitchat does it.
//!
//! Every node keeps a bounded archive of recent broadcast packets (the
//! latest announce per peer and public messages). It asks each neighbour
//! five seconds after a link comes up, and every 30 s after that, with a GCS
//! filter of what it holds; the neighbour answers with what the filter does
//! not contain, each packet unmodified except TTL 0 and the RSR flag, sent
//! only on that link. Requests are link-local (TTL 0, never relayed), must be
//! signed by the peer bound to the link, and are answered at most
//! [`MAX_RESPONSES_PER_WINDOW`] times per 30 s with at most
//! [`MAX_PACKETS_PER_RESPONSE`] packets each, so a request flood cannot make
//! us amplify traffic without bound. A response is accepted only on a link we
//! asked within the last 30 s.

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use yonder_wire::gcs::{GcsFilter, packet_id};
use yonder_wire::sync::RequestSync;
use yonder_wire::{MessageType, Packet, PeerId};

use crate::limits::PacketId;
use crate::time::millis;
use crate::{Instant, LinkId, Node};

/// Archive size (iOS keeps 1000).
pub(crate) const ARCHIVE_CAPACITY: usize = 1000;
/// Public messages are offered for this long (iOS: 6 h).
const MESSAGE_MAX_AGE: Duration = Duration::from_secs(6 * 3600);
/// Delay of the first request on a new link.
const INITIAL_DELAY: Duration = Duration::from_secs(5);
/// Period of requests on every link.
const PERIOD: Duration = Duration::from_secs(30);
/// A response is accepted this long after our request on that link.
const RESPONSE_WINDOW: Duration = Duration::from_secs(30);
/// Filter size budget in bytes (iOS: 400).
const FILTER_BYTES: usize = 400;
/// Requests answered per link per 30 s (iOS: 8).
pub(crate) const MAX_RESPONSES_PER_WINDOW: usize = 8;
/// Packets sent in answer to one request.
pub(crate) const MAX_PACKETS_PER_RESPONSE: usize = 64;

#[derive(Debug)]
struct Archived {
    id: PacketId,
    sender: PeerId,
    msg_type: MessageType,
    timestamp: u64,
    frame: Vec<u8>,
}

/// State of this module inside a [`Node`].
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    archive: VecDeque<Archived>,
    /// When we last asked each link.
    asked: BTreeMap<LinkId, Instant>,
    /// Links to ask, and when.
    due: BTreeMap<LinkId, Instant>,
    /// When we answered each link, within the last window.
    answered: BTreeMap<LinkId, VecDeque<Instant>>,
}

impl Node {
    pub(crate) fn sync_link_up(&mut self, now: Instant, link: LinkId) {
        self.sync.due.insert(link, now + INITIAL_DELAY);
    }

    pub(crate) fn sync_next_timeout(&self) -> Option<Instant> {
        self.sync.due.values().min().copied()
    }

    pub(crate) fn sync_timeout(&mut self, now: Instant) {
        self.sync.due.retain(|l, _| self.links.contains_key(l));
        self.sync.asked.retain(|l, _| self.links.contains_key(l));
        self.sync.answered.retain(|l, _| self.links.contains_key(l));
        let due: Vec<LinkId> =
            self.sync.due.iter().filter(|(_, t)| **t <= now).map(|(l, _)| *l).collect();
        if due.is_empty() {
            return;
        }
        let Some(bytes) = self.sync_request(now) else { return };
        for link in due {
            self.sync.due.insert(link, now + PERIOD);
            self.sync.asked.insert(link, now);
            self.queue_frame(link, MessageType::REQUEST_SYNC, bytes.clone(), true);
        }
    }

    /// A signed REQUEST_SYNC with a filter of everything archived, newest first.
    fn sync_request(&mut self, now: Instant) -> Option<Vec<u8>> {
        let ids: Vec<PacketId> = self.sync.archive.iter().rev().map(|a| a.id).collect();
        let (filter, _) = GcsFilter::build(&ids, FILTER_BYTES, 0.01);
        let payload = RequestSync::from_filter(&filter).encode().ok()?;
        let mut p = Packet::new(MessageType::REQUEST_SYNC, self.me, self.wall_ms(now), payload);
        p.ttl = 0;
        self.sign_and_mark(now, &mut p);
        p.encode().ok()
    }

    /// Archives a broadcast announce or public message for later sync.
    pub(crate) fn remember_for_sync(&mut self, _now: Instant, p: &Packet, raw: &[u8]) {
        if !p.is_broadcast() || !matches!(p.msg_type, MessageType::ANNOUNCE | MessageType::MESSAGE)
        {
            return;
        }
        if p.msg_type == MessageType::ANNOUNCE
            && self.config.policy == crate::RelayPolicy::Yonder
            && (p.rsr || self.yonder_budget() == Some(0))
        {
            // Offering an announce we would not relay would carry it one
            // hop further every sync round, past its scope.
            return;
        }
        let mut q = p.clone();
        q.ttl = 0;
        q.rsr = true;
        let frame = match q.encode() {
            Ok(f) => f,
            Err(_) => raw.to_vec(),
        };
        if p.msg_type == MessageType::ANNOUNCE {
            // Only the latest announce per peer is worth offering.
            self.sync
                .archive
                .retain(|a| !(a.msg_type == MessageType::ANNOUNCE && a.sender == p.sender));
        }
        if self.sync.archive.len() >= ARCHIVE_CAPACITY {
            self.sync.archive.pop_front();
        }
        self.sync.archive.push_back(Archived {
            id: packet_id(p.msg_type.0, &p.sender.0, p.timestamp, &p.payload),
            sender: p.sender,
            msg_type: p.msg_type,
            timestamp: p.timestamp,
            frame,
        });
    }

    pub(crate) fn on_request_sync(&mut self, now: Instant, link: LinkId, p: &Packet) {
        // Link-local and from the peer bound to this link, signed by it.
        if p.ttl != 0
            || !self.fresh(now, p.timestamp)
            || self.links.get(&link).and_then(|l| l.peer) != Some(p.sender)
        {
            return;
        }
        if !self.verify_from_known(p) {
            self.count_unverified(p);
            return;
        }
        let Ok(req) = RequestSync::decode(&p.payload) else {
            self.stats.malformed += 1;
            return;
        };
        let Ok(filter) = req.gcs_filter() else {
            self.stats.malformed += 1;
            return;
        };
        let window = self.sync.answered.entry(link).or_default();
        while window.front().is_some_and(|t| now.saturating_since(*t) >= RESPONSE_WINDOW) {
            window.pop_front();
        }
        if window.len() >= MAX_RESPONSES_PER_WINDOW {
            return;
        }
        window.push_back(now);
        let wall = self.wall_ms(now);
        let types = req.effective_types();
        let max_age = millis(MESSAGE_MAX_AGE);
        let frames: Vec<Vec<u8>> = self
            .sync
            .archive
            .iter()
            .rev()
            .filter(|a| types.covers_message_type(a.msg_type.0))
            .filter(|a| wall.saturating_sub(a.timestamp) <= max_age)
            .filter(|a| !filter.contains(&a.id))
            .take(MAX_PACKETS_PER_RESPONSE)
            .map(|a| a.frame.clone())
            .collect();
        for f in frames {
            let t = Packet::decode(&f).map(|q| q.msg_type).unwrap_or(MessageType::MESSAGE);
            self.queue_frame(link, t, f, true);
        }
    }

    /// Whether an RSR packet answers a request we sent on `link` recently.
    pub(crate) fn accepts_sync_response(
        &self,
        now: Instant,
        link: Option<LinkId>,
        p: &Packet,
    ) -> bool {
        let Some(link) = link else { return false };
        let asked =
            self.sync.asked.get(&link).is_some_and(|t| now.saturating_since(*t) < RESPONSE_WINDOW);
        let wall = self.wall_ms(now);
        let not_future = p.timestamp <= wall.saturating_add(millis(self.config.max_clock_skew));
        let young = wall.saturating_sub(p.timestamp) <= millis(MESSAGE_MAX_AGE);
        asked && not_future && young
    }
}
