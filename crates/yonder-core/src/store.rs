//! Persistence seen from the core: a synchronous trait, and an in-memory
//! implementation for tests and the simulator. The daemon's redb store
//! implements the same trait.

use std::collections::{BTreeMap, HashMap};

use yonder_wire::PeerId;

/// A private message waiting for its recipient, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Message ID.
    pub id: String,
    /// Recipient.
    pub to: PeerId,
    /// Text.
    pub text: String,
    /// Author's timestamp, ms since the Unix epoch.
    pub created_ms: u64,
    /// How often it was sent so far.
    pub attempts: u32,
}

/// What the core persists. Calls are synchronous and expected to be durable
/// when they return (the daemon's store commits each one).
pub trait Store {
    /// Signing keys pinned on first use, by Noise static key.
    fn pins(&self) -> Vec<([u8; 32], [u8; 32])>;
    /// Pins (or re-pins) `signing` for `noise`.
    fn put_pin(&mut self, noise: [u8; 32], signing: [u8; 32]);
    /// Every outbox entry.
    fn outbox(&self) -> Vec<OutboxEntry>;
    /// Adds or replaces an outbox entry (by ID).
    fn put_outbox(&mut self, entry: OutboxEntry);
    /// Removes an outbox entry.
    fn remove_outbox(&mut self, id: &str);
    /// Whether an incoming private message ID was already delivered to the app.
    fn was_delivered(&self, from: PeerId, id: &str) -> bool;
    /// Records that an incoming private message was delivered to the app.
    fn mark_delivered(&mut self, from: PeerId, id: &str, at_ms: u64);
}

/// A [`Store`] in memory. Bounded: delivered-ID records beyond
/// `max_delivered` are forgotten oldest first.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    pins: HashMap<[u8; 32], [u8; 32]>,
    outbox: BTreeMap<String, OutboxEntry>,
    delivered: HashMap<(PeerId, String), u64>,
    delivered_order: std::collections::VecDeque<(PeerId, String)>,
    max_delivered: usize,
}

impl MemoryStore {
    /// An empty store that remembers up to 100,000 delivered message IDs.
    pub fn new() -> Self {
        MemoryStore { max_delivered: 100_000, ..Default::default() }
    }
}

impl Store for MemoryStore {
    fn pins(&self) -> Vec<([u8; 32], [u8; 32])> {
        self.pins.iter().map(|(k, v)| (*k, *v)).collect()
    }

    fn put_pin(&mut self, noise: [u8; 32], signing: [u8; 32]) {
        self.pins.insert(noise, signing);
    }

    fn outbox(&self) -> Vec<OutboxEntry> {
        self.outbox.values().cloned().collect()
    }

    fn put_outbox(&mut self, entry: OutboxEntry) {
        self.outbox.insert(entry.id.clone(), entry);
    }

    fn remove_outbox(&mut self, id: &str) {
        self.outbox.remove(id);
    }

    fn was_delivered(&self, from: PeerId, id: &str) -> bool {
        self.delivered.contains_key(&(from, id.to_owned()))
    }

    fn mark_delivered(&mut self, from: PeerId, id: &str, at_ms: u64) {
        let key = (from, id.to_owned());
        if self.delivered.insert(key.clone(), at_ms).is_none() {
            self.delivered_order.push_back(key);
        }
        while self.delivered.len() > self.max_delivered.max(1) {
            match self.delivered_order.pop_front() {
                Some(old) => {
                    self.delivered.remove(&old);
                }
                None => break,
            }
        }
    }
}
