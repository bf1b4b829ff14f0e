//! Crash safety of a real `yonder up` process: a client sends 1,000 messages
//! (public and private) while another thread kills the node with SIGKILL at
//! random moments and restarts it. After every restart, every message the
//! node had answered as sent must be in its store: public and private ones
//! in the history, private ones also in the outbox (their recipient never
//! appears, so they wait there).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore as _, SeedableRng as _};
use yonder::client::Client;
use yonder::control::Request;

const SENDS: usize = 1000;
/// Recipients that never show up, so private messages stay in the outbox.
/// Twenty of them keep each under the core's cap of 100 waiting messages
/// per recipient (beyond it the oldest is dropped, and reported).
fn absent(i: usize) -> String {
    format!("{:016x}", 0x0123_4567_89ab_0000_u64 + (i % 20) as u64)
}

fn start(dir: &Path, config: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.with_extension("log"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_yonder"))
        .arg("--data-dir")
        .arg(dir)
        .args(["up", "--nick", "crash", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut c) = Client::connect(dir)
            && c.request(&Request::Status).is_ok()
        {
            return child;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("node did not start; its log ends:\n{}", log_tail(dir));
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// What the node's store holds now: history (id → text) and outbox ids.
#[allow(clippy::unwrap_used)]
fn stored(dir: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let mut c = Client::connect(dir).unwrap();
    let h = c.request(&Request::History { limit: 10_000 }).unwrap();
    let history = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m["text"].as_str().unwrap().to_owned()))
        .collect();
    let o = c.request(&Request::Outbox).unwrap();
    let outbox = o["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    (history, outbox)
}

/// Kills the node when the test ends, also when it fails.
struct Guard(Arc<Mutex<Child>>);

impl Drop for Guard {
    fn drop(&mut self) {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[derive(Default)]
struct Sent {
    /// (id, text, private) of every send the node answered with ok.
    acked: Vec<(String, String, bool)>,
}

#[test]
fn kill_9_during_a_thousand_sends_loses_nothing_the_node_acknowledged() {
    let dir: PathBuf = std::env::temp_dir().join(format!("yonder-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(dir.with_extension("log"));
    let config = dir.with_extension("toml");
    // No links: the test is about the store, and no neighbour is needed.
    std::fs::write(&config, "[lan]\nenabled = false\n[ble]\nenabled = false\n").unwrap();

    let child = Guard(Arc::new(Mutex::new(start(&dir, &config))));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let done = Arc::new(AtomicBool::new(false));

    let sender = {
        let (dir, sent, done) = (dir.clone(), sent.clone(), done.clone());
        std::thread::spawn(move || {
            let mut failed = 0u32;
            for i in 0..SENDS {
                let private = i % 2 == 1;
                let text = format!("crash-test message {i:04}");
                loop {
                    let req = if private {
                        Request::Msg { peer: absent(i), text: text.clone() }
                    } else {
                        Request::Say { text: text.clone() }
                    };
                    let reply = Client::connect(&dir).and_then(|mut c| c.request(&req));
                    match reply {
                        Ok(v) => {
                            let id = v["id"].as_str().unwrap().to_owned();
                            sent.lock().unwrap().acked.push((id, text.clone(), private));
                            break;
                        }
                        // The node is down or died mid-request: not acknowledged, try again.
                        Err(_) => {
                            failed += 1;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
            failed
        })
    };

    // Kills follow the sends' progress rather than the clock, so there are
    // as many however fast the machine is: after every 5 to 44
    // acknowledged sends, a random 0 to 5 ms later (often mid-request).
    let mut rng = ChaCha8Rng::seed_from_u64(0x9e37);
    let mut restarts = 0;
    let mut next = 0;
    while !done.load(Ordering::SeqCst) {
        next += 5 + (rng.next_u64() % 40) as usize;
        while sent.lock().unwrap().acked.len() < next && !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if done.load(Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_micros(rng.next_u64() % 5000));
        {
            let mut c = child.0.lock().unwrap();
            if let Ok(Some(status)) = c.try_wait() {
                panic!("the node exited by itself ({status}); its log ends:\n{}", log_tail(&dir));
            }
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
            *c = start(&dir, &config);
        }
        restarts += 1;
        check(&dir, &sent);
    }
    let failed = sender.join().unwrap();
    check(&dir, &sent);
    let acked = sent.lock().unwrap().acked.len();
    assert_eq!(acked, SENDS);
    assert!(
        restarts >= 20,
        "only {restarts} restarts; the kills did not interleave with the sends"
    );
    eprintln!("{SENDS} sends, {restarts} kills, {failed} attempts refused while the node was down");

    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(dir.with_extension("log"));
    let _ = std::fs::remove_file(&config);
}

fn check(dir: &Path, sent: &Mutex<Sent>) {
    // Snapshot first: whatever was acknowledged by now must be stored now.
    let acked = sent.lock().unwrap().acked.clone();
    let (history, outbox) = stored(dir);
    for (id, text, private) in &acked {
        assert_eq!(
            history.get(id),
            Some(text),
            "acknowledged message {id} missing from history; log:\n{}",
            log_tail(dir)
        );
        if *private {
            assert!(
                outbox.contains(id),
                "acknowledged private message {id} missing from outbox; log:\n{}",
                log_tail(dir)
            );
        }
    }
}
