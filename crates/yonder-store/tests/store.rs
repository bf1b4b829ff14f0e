//! The data directory end to end: persistence across reopen, nothing in the
//! clear on disk, passphrases, wipe, schema versions, and `kill -9` in the
//! middle of writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use yonder_core::{OutboxEntry, Store};
use yonder_store::{
    DATABASE_FILE, Direction, HistoryEntry, IDENTITY_FILE, KdfCost, StoreError, open, wipe,
};
use yonder_wire::PeerId;

const CHEAP: KdfCost = KdfCost { m_cost_kib: 64, t_cost: 1, lanes: 1 };

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("yonder-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn entry(i: u32, text: &str) -> OutboxEntry {
    OutboxEntry {
        id: format!("msg-{i:04}"),
        to: PeerId([i as u8; 8]),
        text: text.to_owned(),
        created_ms: 1_700_000_000_000 + u64::from(i),
        attempts: i,
    }
}

fn file_contains(path: &Path, needle: &[u8]) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn everything_survives_a_reopen_and_nothing_is_in_the_clear() {
    let dir = temp_dir("reopen");
    let canary = "the canary sings at midnight 7f3a";
    let peer = PeerId(*b"\x11\x22\x33\x44\x55\x66\x77\x88");
    let id = {
        let mut d = open(&dir, None, CHEAP).unwrap();
        assert!(d.created);
        d.store.put_pin([1; 32], [2; 32]);
        d.store.put_outbox(entry(1, canary));
        d.store.put_outbox(entry(2, "second"));
        d.store.remove_outbox("msg-0002");
        d.store.mark_delivered(peer, "incoming-1", 5);
        d.store
            .append_history(&HistoryEntry {
                id: "h1".into(),
                direction: Direction::PrivateIn,
                peer,
                nick: "alice".into(),
                text: canary.into(),
                timestamp_ms: 9,
            })
            .unwrap();
        d.store.set_favourite(peer, true).unwrap();
        d.store.set_blocked(PeerId([9; 8]), true).unwrap();
        d.store.set_blocked(PeerId([9; 8]), false).unwrap();
        assert!(d.store.take_error().is_none());
        d.secrets.identity.peer_id()
    };

    let mut d = open(&dir, None, CHEAP).unwrap();
    assert!(!d.created);
    assert_eq!(d.secrets.identity.peer_id(), id);
    assert_eq!(d.store.pins(), vec![([1; 32], [2; 32])]);
    assert_eq!(d.store.outbox(), vec![entry(1, canary)]);
    assert!(d.store.was_delivered(peer, "incoming-1"));
    assert!(!d.store.was_delivered(peer, "incoming-2"));
    let h = d.store.history(10).unwrap();
    assert_eq!((h.len(), h[0].text.as_str(), h[0].nick.as_str()), (1, canary, "alice"));
    assert_eq!(d.store.favourites().unwrap(), vec![peer]);
    assert!(d.store.blocked().unwrap().is_empty());
    assert!(d.store.take_error().is_none());

    // On disk: no message text, no peer ID, no pinned key, no secret key.
    let db = dir.join(DATABASE_FILE);
    assert!(!file_contains(&db, canary.as_bytes()));
    assert!(!file_contains(&db, b"alice"));
    assert!(!file_contains(&db, &peer.0));
    assert!(!file_contains(&db, &[2; 32]));
    let (noise, signing) = d.secrets.identity.to_secret_bytes();
    assert!(!file_contains(&db, noise.as_ref()) && !file_contains(&db, signing.as_ref()));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join(IDENTITY_FILE)), 0o600);
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&dir), 0o700);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn passphrases_are_required_and_checked_and_exposed_key_files_refused() {
    let dir = temp_dir("pass");
    let id = open(&dir, Some("hunter2"), CHEAP).unwrap().secrets.identity.peer_id();
    assert!(matches!(open(&dir, None, CHEAP), Err(StoreError::PassphraseRequired)));
    assert!(matches!(open(&dir, Some("hunter3"), CHEAP), Err(StoreError::WrongPassphrase)));
    assert_eq!(open(&dir, Some("hunter2"), CHEAP).unwrap().secrets.identity.peer_id(), id);
    let key = dir.join(IDENTITY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = open(&dir, Some("hunter2"), CHEAP).unwrap_err();
    assert!(matches!(err, StoreError::Exposed { mode: 0o644, .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wipe_destroys_the_identity_and_leaves_old_data_unreadable() {
    let dir = temp_dir("wipe");
    let old_id = {
        let mut d = open(&dir, None, CHEAP).unwrap();
        d.store.put_outbox(entry(1, "secret plans"));
        d.secrets.identity.peer_id()
    };
    // Someone copied the database before the wipe.
    let copy = dir.with_extension("copy.redb");
    std::fs::copy(dir.join(DATABASE_FILE), &copy).unwrap();

    wipe(&dir).unwrap();
    assert!(!dir.join(IDENTITY_FILE).exists() && !dir.join(DATABASE_FILE).exists());
    let mut d = open(&dir, None, CHEAP).unwrap();
    assert!(d.created);
    assert_ne!(d.secrets.identity.peer_id(), old_id);
    assert!(d.store.outbox().is_empty());

    // The copy opens (its schema is in the clear) but no row does.
    let mut stale = yonder_store::RedbStore::open(&copy, &d.secrets.data_key).unwrap();
    assert!(stale.outbox().is_empty());
    assert!(matches!(stale.take_error(), Some(StoreError::Corrupt { .. })));
    assert!(d.store.take_error().is_none());
    // Wiping twice is harmless.
    drop(d);
    wipe(&dir).unwrap();
    wipe(&dir).unwrap();
    std::fs::remove_file(&copy).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = temp_dir("schema");
    drop(open(&dir, None, CHEAP).unwrap());
    {
        let db = redb::Database::create(dir.join(DATABASE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<'_, &str, u32> = redb::TableDefinition::new("meta");
            txn.open_table(def).unwrap().insert("schema", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = open(&dir, None, CHEAP).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, supported: 2, .. }), "{err}");
    assert_eq!(err.fault(), yonder_wire::Fault::Incompatible);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn history_and_delivered_records_are_bounded() {
    let dir = temp_dir("bounds");
    let mut d = open(&dir, None, CHEAP).unwrap();
    for i in 0..5u64 {
        d.store
            .append_history(&HistoryEntry {
                id: format!("h{i}"),
                direction: Direction::Public,
                peer: PeerId([1; 8]),
                nick: "n".into(),
                text: format!("t{i}"),
                timestamp_ms: i,
            })
            .unwrap();
    }
    let last2: Vec<String> = d.store.history(2).unwrap().into_iter().map(|h| h.id).collect();
    assert_eq!(last2, ["h3", "h4"]);
    assert_eq!(yonder_store::MAX_HISTORY, 100_000);
    assert_eq!(yonder_store::MAX_DELIVERED, 100_000);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The writer side of the crash test: runs only when the parent test
/// starts this binary with `YONDER_STORE_CHILD` set. It acknowledges each
/// write on stdout after the store call returned, as the node reports a
/// message sent only after the store has it.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var("YONDER_STORE_CHILD") else { return };
    let start: u32 = std::env::var("YONDER_STORE_FROM").unwrap().parse().unwrap();
    let mut d = open(Path::new(&dir), None, CHEAP).unwrap();
    let mut out = std::io::stdout().lock();
    for i in start..1000 {
        d.store.put_outbox(entry(i, &format!("message number {i}")));
        d.store.mark_delivered(PeerId([7; 8]), &format!("in-{i}"), u64::from(i));
        assert!(d.store.take_error().is_none());
        writeln!(out, "ack:{i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let dir = temp_dir("crash");
    drop(open(&dir, None, CHEAP).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<u32> = Vec::new();
    let mut next = 0u32;
    // A fixed pseudo-random schedule of how many acknowledgements to wait for.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut kills = 0;
    while next < 1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let wait_for = 1 + (x % 120) as u32;
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child_writer", "--nocapture", "--test-threads", "1"])
            .env("YONDER_STORE_CHILD", &dir)
            .env("YONDER_STORE_FROM", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The test harness may print on the same line before us.
            let Some((_, n)) = line.rsplit_once("ack:") else { continue };
            let Ok(i) = n.trim().parse::<u32>() else { continue };
            acked.push(i);
            next = i + 1;
            seen += 1;
            if seen >= wait_for {
                // SIGKILL: no destructors, no flush, mid-transaction at times.
                child.kill().unwrap();
                kills += 1;
                break;
            }
        }
        child.wait().unwrap();

        let mut d = open(&dir, None, CHEAP).unwrap();
        let outbox: std::collections::BTreeSet<String> =
            d.store.outbox().into_iter().map(|e| e.id).collect();
        for &i in &acked {
            assert!(outbox.contains(&format!("msg-{i:04}")), "acknowledged {i} lost");
            assert!(d.store.was_delivered(PeerId([7; 8]), &format!("in-{i}")));
        }
        assert!(d.store.take_error().is_none());
    }
    assert!(kills >= 10, "only {kills} kills");
    assert_eq!(acked.len(), 1000);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_schema_1_database_is_migrated_and_keeps_its_rows() {
    let dir = temp_dir("migrate");
    {
        let mut d = open(&dir, None, CHEAP).unwrap();
        d.store.put_outbox(entry(1, "kept across the migration"));
        d.store.set_favourite(PeerId([7; 8]), true).unwrap();
    }
    // Turn the file back into what schema 1 wrote: no verified or settings table.
    {
        let db = redb::Database::create(dir.join(DATABASE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<'_, &str, u32> = redb::TableDefinition::new("meta");
            txn.open_table(meta).unwrap().insert("schema", 1).unwrap();
            for name in ["verified", "settings"] {
                let def: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new(name);
                assert!(txn.delete_table(def).unwrap());
            }
        }
        txn.commit().unwrap();
    }
    let mut d = open(&dir, None, CHEAP).unwrap();
    assert_eq!(d.store.schema_version().unwrap(), 2);
    assert_eq!(d.store.outbox(), vec![entry(1, "kept across the migration")]);
    assert_eq!(d.store.favourites().unwrap(), vec![PeerId([7; 8])]);
    assert_eq!(d.store.setting("nick").unwrap(), None);
    d.store.set_setting("nick", b"alice").unwrap();
    d.store.set_verified(PeerId([9; 8]), Some([4; 32])).unwrap();
    drop(d);
    let mut d = open(&dir, None, CHEAP).unwrap();
    assert_eq!(d.store.setting("nick").unwrap().as_deref(), Some(&b"alice"[..]));
    assert_eq!(d.store.verified().unwrap(), vec![(PeerId([9; 8]), [4; 32])]);
    d.store.set_verified(PeerId([9; 8]), None).unwrap();
    assert!(d.store.verified().unwrap().is_empty());
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_batch_lands_whole_after_single_writes() {
    let dir = temp_dir("batch");
    let mut d = open(&dir, None, CHEAP).unwrap();
    let h = |i: u64| HistoryEntry {
        id: format!("b{i}"),
        direction: Direction::PrivateIn,
        peer: PeerId([2; 8]),
        nick: "m".into(),
        text: format!("text {i}"),
        timestamp_ms: i,
    };
    d.store.append_history(&h(0)).unwrap();
    let delivered =
        vec![(PeerId([2; 8]), "b1".to_owned(), 1), (PeerId([2; 8]), "b2".to_owned(), 2)];
    d.store.record_batch(&[h(1), h(2)], &delivered).unwrap();
    d.store.record_batch(&[], &[]).unwrap();
    drop(d);
    let d = open(&dir, None, CHEAP).unwrap();
    let ids: Vec<String> = d.store.history(10).unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["b0", "b1", "b2"]);
    assert!(d.store.was_delivered(PeerId([2; 8]), "b1"));
    assert!(d.store.was_delivered(PeerId([2; 8]), "b2"));
    assert!(!d.store.was_delivered(PeerId([2; 8]), "b0"));
    assert!(!file_contains(&dir.join(DATABASE_FILE), b"text 1"));
    std::fs::remove_dir_all(&dir).unwrap();
}
