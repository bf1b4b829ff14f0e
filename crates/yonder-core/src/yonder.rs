//! yonder dissemination (being written).

use yonder_wire::Packet;

use crate::limits::PacketId;
use crate::{Instant, LinkId, Node};

/// State of this module inside a [`Node`].
#[derive(Debug, Default)]
pub(crate) struct YonderState {}

impl Node {
    pub(crate) fn yonder_link_up(&mut self, _now: Instant, _link: LinkId) {}
    pub(crate) fn yonder_link_down(&mut self, _now: Instant, _link: LinkId) {}
    pub(crate) fn yonder_timeout(&mut self, _now: Instant) {}
    pub(crate) fn yonder_next_timeout(&self) -> Option<Instant> {
        None
    }
    pub(crate) fn yonder_originate(&mut self, _now: Instant, _p: &Packet, _id: PacketId, _bytes: &[u8]) {}
    pub(crate) fn yonder_relay(&mut self, _now: Instant, _ingress: Option<LinkId>, _p: &Packet, _id: PacketId, _raw: &[u8]) -> bool {
        false
    }
    pub(crate) fn yonder_duplicate(&mut self, _now: Instant, _link: Option<LinkId>, _id: &PacketId) {}
}
