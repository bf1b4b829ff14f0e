//! Binary spray-and-wait couriers for private messages to absent peers (being written).

use yonder_wire::{MessageType, Packet, PeerId};

use crate::{Instant, LinkId, Node};

/// Link-local packet type of courier traffic between yonder peers.
pub const SPRAY_TYPE: MessageType = MessageType(0x61);

/// State of this module inside a [`Node`].
#[derive(Debug, Default)]
pub(crate) struct SprayState {}

impl Node {
    pub(crate) fn spray_direct_peer(&mut self, _now: Instant, _link: LinkId, _peer: PeerId) {}
    pub(crate) fn spray_timeout(&mut self, _now: Instant) {}
    pub(crate) fn spray_next_timeout(&self) -> Option<Instant> {
        None
    }
    pub(crate) fn spray_packet(&mut self, _now: Instant, _link: Option<LinkId>, _p: &Packet) {}
}
