//! [`RedbStore`]: the core's [`Store`] on a redb file, plus what the daemon
//! keeps besides (history, favourites, blocks).
//!
//! Every value is sealed with ChaCha20-Poly1305 under a key derived from the
//! data key in the identity file, with the table name and the row key as
//! associated data, so a row cannot be moved to another table or key. Row
//! keys that would name a peer or a message are blinded with HMAC-SHA-256
//! under a second derived key: the file shows how many rows there are, not
//! whom they are about. Each write is its own transaction, committed with
//! redb's immediate durability before the call returns.

use std::cell::RefCell;
use std::path::Path;

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac as _};
use rand_core::{OsRng, RngCore as _};
use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition,
};
use sha2::Sha256;
use yonder_core::{OutboxEntry, Store};
use yonder_wire::PeerId;
use zeroize::Zeroizing;

use crate::StoreError;

/// The newest schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 2;
/// Delivered-message records kept (oldest forgotten first), as in the core's `MemoryStore`.
pub const MAX_DELIVERED: u64 = 100_000;
/// History entries kept (oldest forgotten first).
pub const MAX_HISTORY: u64 = 100_000;

type Bytes = TableDefinition<'static, &'static [u8], &'static [u8]>;
const META: TableDefinition<'static, &'static str, u32> = TableDefinition::new("meta");
const PINS: Bytes = TableDefinition::new("pins");
const OUTBOX: Bytes = TableDefinition::new("outbox");
const DELIVERED: Bytes = TableDefinition::new("delivered");
/// (at_ms, blinded key) → (), to forget the oldest delivered records.
const DELIVERED_AGE: Bytes = TableDefinition::new("delivered_age");
const HISTORY: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("history");
const FAVOURITES: Bytes = TableDefinition::new("favourites");
const BLOCKED: Bytes = TableDefinition::new("blocked");
/// Since schema 2: peer → the fingerprint the user verified for it.
const VERIFIED: Bytes = TableDefinition::new("verified");
/// Since schema 2: the daemon's settings (the nickname), by name.
const SETTINGS: Bytes = TableDefinition::new("settings");

/// Which way a history entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A public message (ours or someone's).
    Public,
    /// A private message we received.
    PrivateIn,
    /// A private message we sent.
    PrivateOut,
}

/// One message in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Message ID.
    pub id: String,
    /// Public, received or sent.
    pub direction: Direction,
    /// The author (public, received) or the recipient (sent).
    pub peer: PeerId,
    /// The nickname shown with it.
    pub nick: String,
    /// The text.
    pub text: String,
    /// Author's timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
}

/// The core's [`Store`] and the daemon's records on one redb file.
pub struct RedbStore {
    db: Database,
    seal: ChaCha20Poly1305,
    blind: Zeroizing<[u8; 32]>,
    /// The first error since [`RedbStore::take_error`] last asked: the
    /// [`Store`] trait's calls cannot return one.
    error: RefCell<Option<StoreError>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

fn derive(data_key: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as hmac::Mac>::new_from_slice(data_key).unwrap_or_else(|_| unreachable!());
    mac.update(label);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

impl RedbStore {
    /// Opens (or creates) the database at `path` with the data key from the
    /// identity file, migrating an older schema and refusing a newer one.
    pub fn open(path: &Path, data_key: &[u8; 32]) -> Result<RedbStore, StoreError> {
        let db = Database::create(path)
            .map_err(|e| StoreError::Db(format!("{}: {e}", path.display())))?;
        let enc = derive(data_key, b"yonder-store v1 seal");
        let store = RedbStore {
            db,
            seal: ChaCha20Poly1305::new(Key::from_slice(enc.as_ref())),
            blind: derive(data_key, b"yonder-store v1 blind"),
            error: RefCell::new(None),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut meta = txn.open_table(META).map_err(StoreError::db)?;
            let found = meta.get("schema").map_err(StoreError::db)?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::TooNew {
                        what: "database".into(),
                        found: v,
                        supported: SCHEMA_VERSION,
                    });
                }
                // Each step runs in this one transaction, so a crash leaves
                // the old version or the new one. 1 → 2 only adds the
                // verified and settings tables, which the loop below creates.
                Some(_) | None => {
                    meta.insert("schema", SCHEMA_VERSION).map_err(StoreError::db)?;
                }
            }
            // Create every table, so readers never meet a missing one.
            for t in
                [PINS, OUTBOX, DELIVERED, DELIVERED_AGE, FAVOURITES, BLOCKED, VERIFIED, SETTINGS]
            {
                txn.open_table(t).map_err(StoreError::db)?;
            }
            txn.open_table(HISTORY).map_err(StoreError::db)?;
        }
        txn.commit().map_err(StoreError::db)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let meta = txn.open_table(META).map_err(StoreError::db)?;
        Ok(meta.get("schema").map_err(StoreError::db)?.map_or(0, |v| v.value()))
    }

    /// The first write error since the last call, if any. The daemon checks
    /// this after each command and stops rather than report unsaved state.
    pub fn take_error(&mut self) -> Option<StoreError> {
        self.error.get_mut().take()
    }

    fn note(&self, e: StoreError) {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    fn blinded(&self, table: &str, key: &[u8]) -> [u8; 16] {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(self.blind.as_ref())
            .unwrap_or_else(|_| unreachable!());
        mac.update(table.as_bytes());
        mac.update(&[0]);
        mac.update(key);
        let full: [u8; 32] = mac.finalize().into_bytes().into();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    fn seal(&self, table: &str, row: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let aad = [table.as_bytes(), &[0], row].concat();
        // Encryption with a 32-byte key and a 12-byte nonce cannot fail.
        let ct = self
            .seal
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: &aad })
            .unwrap_or_default();
        [nonce.as_slice(), &ct].concat()
    }

    fn open_row(&self, table: &str, row: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let corrupt = || StoreError::Corrupt { what: format!("{table} row") };
        if sealed.len() < 12 + 16 {
            return Err(corrupt());
        }
        let aad = [table.as_bytes(), &[0], row].concat();
        self.seal
            .decrypt(Nonce::from_slice(&sealed[..12]), Payload { msg: &sealed[12..], aad: &aad })
            .map_err(|_| corrupt())
    }

    /// Runs one write transaction; remembers the error for [`RedbStore::take_error`].
    fn write(
        &mut self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> bool {
        let result = (|| {
            let txn = self.db.begin_write()?;
            f(&txn)?;
            txn.commit()?;
            Ok::<(), redb::Error>(())
        })();
        match result {
            Ok(()) => true,
            Err(e) => {
                self.note(StoreError::db(e));
                false
            }
        }
    }

    fn put_bytes(&mut self, table: Bytes, name: &str, key: &[u8], plain: &[u8]) -> bool {
        let row = self.blinded(name, key);
        let value = self.seal(name, &row, plain);
        self.write(|txn| {
            txn.open_table(table)?.insert(row.as_slice(), value.as_slice())?;
            Ok(())
        })
    }

    fn remove_bytes(&mut self, table: Bytes, name: &str, key: &[u8]) -> bool {
        let row = self.blinded(name, key);
        self.write(|txn| {
            txn.open_table(table)?.remove(row.as_slice())?;
            Ok(())
        })
    }

    /// Every row of a blinded table, opened. A damaged row is skipped (and
    /// noted for [`RedbStore::take_error`]) so it cannot hide the others.
    fn all(&self, table: Bytes, name: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let t = txn.open_table(table).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(StoreError::db)? {
            let (k, v) = item.map_err(StoreError::db)?;
            match self.open_row(name, k.value(), v.value()) {
                Ok(plain) => out.push(plain),
                Err(e) => self.note(e),
            }
        }
        Ok(out)
    }

    /// [`RedbStore::all`] for the trait's infallible reads.
    fn all_or_note(&self, table: Bytes, name: &str) -> Vec<Vec<u8>> {
        self.all(table, name).unwrap_or_else(|e| {
            self.note(e);
            Vec::new()
        })
    }

    fn contains(&self, table: Bytes, name: &str, key: &[u8]) -> Result<bool, StoreError> {
        let row = self.blinded(name, key);
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let t = txn.open_table(table).map_err(StoreError::db)?;
        Ok(t.get(row.as_slice()).map_err(StoreError::db)?.is_some())
    }

    // ----- the daemon's records -----

    /// Appends a message to the history (the oldest is forgotten beyond [`MAX_HISTORY`]).
    pub fn append_history(&mut self, entry: &HistoryEntry) -> Result<(), StoreError> {
        let plain = encode_history(entry);
        let txn = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut t = txn.open_table(HISTORY).map_err(StoreError::db)?;
            let next = t.last().map_err(StoreError::db)?.map_or(0, |(k, _)| k.value() + 1);
            let value = self.seal("history", &next.to_be_bytes(), &plain);
            t.insert(next, value.as_slice()).map_err(StoreError::db)?;
            while t.len().map_err(StoreError::db)? > MAX_HISTORY {
                t.pop_first().map_err(StoreError::db)?;
            }
        }
        txn.commit().map_err(StoreError::db)
    }

    /// Appends history entries and records delivered messages in one
    /// transaction: one durable commit for everything a driver took in at
    /// once, instead of one per message.
    pub fn record_batch(
        &mut self,
        history: &[HistoryEntry],
        delivered: &[(PeerId, String, u64)],
    ) -> Result<(), StoreError> {
        if history.is_empty() && delivered.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut t = txn.open_table(HISTORY).map_err(StoreError::db)?;
            let first = t.last().map_err(StoreError::db)?.map_or(0, |(k, _)| k.value() + 1);
            for (key, entry) in (first..).zip(history) {
                let value = self.seal("history", &key.to_be_bytes(), &encode_history(entry));
                t.insert(key, value.as_slice()).map_err(StoreError::db)?;
            }
            while t.len().map_err(StoreError::db)? > MAX_HISTORY {
                t.pop_first().map_err(StoreError::db)?;
            }
        }
        if !delivered.is_empty() {
            let mut rows = txn.open_table(DELIVERED).map_err(StoreError::db)?;
            let mut age = txn.open_table(DELIVERED_AGE).map_err(StoreError::db)?;
            for (from, id, at_ms) in delivered {
                let key = [from.0.as_slice(), id.as_bytes()].concat();
                let row = self.blinded("delivered", &key);
                let value = self.seal("delivered", &row, &at_ms.to_be_bytes());
                if rows.insert(row.as_slice(), value.as_slice()).map_err(StoreError::db)?.is_none()
                {
                    let age_key = [at_ms.to_be_bytes().as_slice(), &row].concat();
                    age.insert(age_key.as_slice(), [].as_slice()).map_err(StoreError::db)?;
                }
            }
        }
        if !delivered.is_empty() {
            RedbStore::forget_old_delivered(&txn).map_err(StoreError::db)?;
        }
        txn.commit().map_err(StoreError::db)
    }

    /// The last `limit` history entries, oldest first.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let t = txn.open_table(HISTORY).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(StoreError::db)?.rev().take(limit) {
            let (k, v) = item.map_err(StoreError::db)?;
            let plain = self.open_row("history", &k.value().to_be_bytes(), v.value())?;
            out.push(
                decode_history(&plain)
                    .ok_or_else(|| StoreError::Corrupt { what: "history row".into() })?,
            );
        }
        out.reverse();
        Ok(out)
    }

    /// Marks or unmarks `peer` as a favourite.
    pub fn set_favourite(&mut self, peer: PeerId, on: bool) -> Result<(), StoreError> {
        self.set_flag(FAVOURITES, "favourites", peer, on)
    }

    /// Favourite peers.
    pub fn favourites(&self) -> Result<Vec<PeerId>, StoreError> {
        self.flagged(FAVOURITES, "favourites")
    }

    /// Blocks or unblocks `peer`.
    pub fn set_blocked(&mut self, peer: PeerId, on: bool) -> Result<(), StoreError> {
        self.set_flag(BLOCKED, "blocked", peer, on)
    }

    /// Blocked peers.
    pub fn blocked(&self) -> Result<Vec<PeerId>, StoreError> {
        self.flagged(BLOCKED, "blocked")
    }

    /// Records that the user checked `peer`'s fingerprint out of band, or
    /// (with `None`) forgets it.
    pub fn set_verified(
        &mut self,
        peer: PeerId,
        fingerprint: Option<[u8; 32]>,
    ) -> Result<(), StoreError> {
        let ok = match fingerprint {
            Some(f) => self.put_bytes(VERIFIED, "verified", &peer.0, &[&peer.0[..], &f].concat()),
            None => self.remove_bytes(VERIFIED, "verified", &peer.0),
        };
        self.result(ok)
    }

    /// Verified peers and the fingerprints they were verified with.
    pub fn verified(&self) -> Result<Vec<(PeerId, [u8; 32])>, StoreError> {
        self.all(VERIFIED, "verified")?
            .into_iter()
            .map(|b| {
                let peer = b.get(..8).and_then(|x| x.try_into().ok()).map(PeerId);
                let fp = b.get(8..40).and_then(|x| x.try_into().ok());
                peer.zip(fp).ok_or_else(|| StoreError::Corrupt { what: "verified row".into() })
            })
            .collect()
    }

    /// Stores a setting (at most a few KiB; the nickname, say).
    pub fn set_setting(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let ok = self.put_bytes(SETTINGS, "settings", name.as_bytes(), value);
        self.result(ok)
    }

    /// A setting, if set.
    pub fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self.blinded("settings", name.as_bytes());
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let t = txn.open_table(SETTINGS).map_err(StoreError::db)?;
        let Some(v) = t.get(row.as_slice()).map_err(StoreError::db)? else { return Ok(None) };
        self.open_row("settings", &row, v.value()).map(Some)
    }

    fn result(&mut self, ok: bool) -> Result<(), StoreError> {
        match (ok, self.error.get_mut().take()) {
            (true, _) => Ok(()),
            (false, Some(e)) => Err(e),
            (false, None) => Err(StoreError::Db("write failed".into())),
        }
    }

    fn set_flag(&mut self, t: Bytes, name: &str, peer: PeerId, on: bool) -> Result<(), StoreError> {
        let ok = if on {
            self.put_bytes(t, name, &peer.0, &peer.0)
        } else {
            self.remove_bytes(t, name, &peer.0)
        };
        self.result(ok)
    }

    fn flagged(&self, t: Bytes, name: &str) -> Result<Vec<PeerId>, StoreError> {
        self.all(t, name)?
            .into_iter()
            .map(|b| {
                b.as_slice()
                    .try_into()
                    .map(PeerId)
                    .map_err(|_| StoreError::Corrupt { what: format!("{name} row") })
            })
            .collect()
    }

    fn forget_old_delivered(txn: &redb::WriteTransaction) -> Result<(), redb::Error> {
        let mut age = txn.open_table(DELIVERED_AGE)?;
        let mut rows = txn.open_table(DELIVERED)?;
        while age.len()? > MAX_DELIVERED {
            let Some((k, _)) = age.pop_first()? else { break };
            let key = k.value().to_vec();
            drop(k);
            if let Some(row) = key.get(8..) {
                rows.remove(row)?;
            }
        }
        Ok(())
    }
}

impl Store for RedbStore {
    fn pins(&self) -> Vec<([u8; 32], [u8; 32])> {
        self.all_or_note(PINS, "pins")
            .into_iter()
            .filter_map(|b| Some((b.get(..32)?.try_into().ok()?, b.get(32..64)?.try_into().ok()?)))
            .collect()
    }

    fn put_pin(&mut self, noise: [u8; 32], signing: [u8; 32]) {
        self.put_bytes(PINS, "pins", &noise, &[noise, signing].concat());
    }

    fn outbox(&self) -> Vec<OutboxEntry> {
        self.all_or_note(OUTBOX, "outbox").into_iter().filter_map(|b| decode_outbox(&b)).collect()
    }

    fn put_outbox(&mut self, entry: OutboxEntry) {
        let plain = encode_outbox(&entry);
        self.put_bytes(OUTBOX, "outbox", entry.id.as_bytes(), &plain);
    }

    fn remove_outbox(&mut self, id: &str) {
        self.remove_bytes(OUTBOX, "outbox", id.as_bytes());
    }

    fn was_delivered(&self, from: PeerId, id: &str) -> bool {
        let key = [from.0.as_slice(), id.as_bytes()].concat();
        self.contains(DELIVERED, "delivered", &key).unwrap_or_else(|e| {
            self.note(e);
            false
        })
    }

    fn mark_delivered(&mut self, from: PeerId, id: &str, at_ms: u64) {
        let key = [from.0.as_slice(), id.as_bytes()].concat();
        let row = self.blinded("delivered", &key);
        let value = self.seal("delivered", &row, &at_ms.to_be_bytes());
        let age_key = [at_ms.to_be_bytes().as_slice(), &row].concat();
        self.write(|txn| {
            let fresh =
                txn.open_table(DELIVERED)?.insert(row.as_slice(), value.as_slice())?.is_none();
            if fresh {
                txn.open_table(DELIVERED_AGE)?.insert(age_key.as_slice(), [].as_slice())?;
                RedbStore::forget_old_delivered(txn)?;
            }
            Ok(())
        });
    }
}

// ----- record encodings: length-prefixed fields -----

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = usize::try_from(self.u32()?).ok()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn peer(&mut self) -> Option<PeerId> {
        Some(PeerId(self.take(8)?.try_into().ok()?))
    }
}

fn encode_outbox(e: &OutboxEntry) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, &e.id);
    out.extend_from_slice(&e.to.0);
    put_str(&mut out, &e.text);
    out.extend_from_slice(&e.created_ms.to_be_bytes());
    out.extend_from_slice(&e.attempts.to_be_bytes());
    out
}

fn decode_outbox(b: &[u8]) -> Option<OutboxEntry> {
    let mut r = Reader(b);
    let e = OutboxEntry {
        id: r.str()?,
        to: r.peer()?,
        text: r.str()?,
        created_ms: r.u64()?,
        attempts: r.u32()?,
    };
    r.0.is_empty().then_some(e)
}

fn encode_history(e: &HistoryEntry) -> Vec<u8> {
    let mut out = vec![match e.direction {
        Direction::Public => 0,
        Direction::PrivateIn => 1,
        Direction::PrivateOut => 2,
    }];
    put_str(&mut out, &e.id);
    out.extend_from_slice(&e.peer.0);
    put_str(&mut out, &e.nick);
    put_str(&mut out, &e.text);
    out.extend_from_slice(&e.timestamp_ms.to_be_bytes());
    out
}

fn decode_history(b: &[u8]) -> Option<HistoryEntry> {
    let mut r = Reader(b);
    let direction = match r.take(1)? {
        [0] => Direction::Public,
        [1] => Direction::PrivateIn,
        [2] => Direction::PrivateOut,
        _ => return None,
    };
    let e = HistoryEntry {
        direction,
        id: r.str()?,
        peer: r.peer()?,
        nick: r.str()?,
        text: r.str()?,
        timestamp_ms: r.u64()?,
    };
    r.0.is_empty().then_some(e)
}
