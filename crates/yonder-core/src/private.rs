//! Noise sessions and private messages (being written).

use yonder_wire::{Packet, PeerId};

use crate::{Instant, LinkId, Node};

/// State of this module inside a [`Node`].
#[derive(Debug, Default)]
pub(crate) struct PrivateState {}

impl Node {
    pub(crate) fn private_peer_up(&mut self, _now: Instant, _peer: PeerId) {}
    pub(crate) fn private_timeout(&mut self, _now: Instant) {}
    pub(crate) fn private_next_timeout(&self) -> Option<Instant> {
        None
    }
    pub(crate) fn private_packet(&mut self, _now: Instant, _link: Option<LinkId>, _p: &Packet) {}
}
