//! Gossip sync (being written).

use yonder_wire::Packet;

use crate::{Instant, LinkId, Node};

/// State of this module inside a [`Node`].
#[derive(Debug, Default)]
pub(crate) struct SyncState {}

impl Node {
    pub(crate) fn sync_link_up(&mut self, _now: Instant, _link: LinkId) {}
    pub(crate) fn sync_timeout(&mut self, _now: Instant) {}
    pub(crate) fn sync_next_timeout(&self) -> Option<Instant> {
        None
    }
    pub(crate) fn on_request_sync(&mut self, _now: Instant, _link: LinkId, _p: &Packet) {}
    pub(crate) fn accepts_sync_response(&self, _now: Instant, _link: Option<LinkId>, _p: &Packet) -> bool {
        false
    }
    pub(crate) fn remember_for_sync(&mut self, _now: Instant, _p: &Packet, _raw: &[u8]) {}
}
