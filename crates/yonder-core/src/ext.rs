//! Hooks where the node's optional parts plug in: private messaging, gossip
//! sync and yonder's own dissemination. Each forwards to its module.

use yonder_wire::{Packet, PeerId};

use crate::limits::PacketId;
use crate::{Instant, LinkId, Node};

impl Node {
    pub(crate) fn on_link_up(&mut self, now: Instant, link: LinkId) {
        self.sync_link_up(now, link);
        self.yonder_link_up(now, link);
    }

    pub(crate) fn on_link_down(&mut self, now: Instant, link: LinkId) {
        self.yonder_link_down(now, link);
        self.roomnet_link_down(link);
    }

    pub(crate) fn on_peer_up(&mut self, now: Instant, peer: PeerId) {
        self.private_peer_up(now, peer);
    }

    /// A link was bound to the peer whose direct announce arrived on it.
    pub(crate) fn on_direct_peer(&mut self, now: Instant, link: LinkId, peer: PeerId) {
        self.spray_direct_peer(now, link, peer);
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) {
        self.spray_timeout(now);
        self.private_timeout(now);
        self.sync_timeout(now);
        self.yonder_timeout(now);
        self.roomnet_timeout(now);
    }

    pub(crate) fn extension_timeout(&self) -> Option<Instant> {
        [
            self.private_next_timeout(),
            self.sync_next_timeout(),
            self.yonder_next_timeout(),
            self.spray_next_timeout(),
            self.roomnet_next_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn on_noise(&mut self, now: Instant, link: Option<LinkId>, p: &Packet) {
        self.private_packet(now, link, p);
    }

    #[allow(dead_code)]
    pub(crate) fn packet_seen(&self, id: &PacketId) -> bool {
        self.seen.contains(id)
    }
}
