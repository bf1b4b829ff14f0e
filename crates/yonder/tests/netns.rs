//! Acceptance tests of `yonder up` over real networks: real processes in
//! Linux network namespaces joined by veth pairs, finding each other by
//! multicast beacons and linked over TCP.
//!
//! - `chain_of_three`: A–B–C with A and C on no common segment. Public and
//!   private messages go from A to C through B; B (logging at trace) keeps
//!   no plaintext of the private ones in its log or data directory; receipts
//!   come back; a message written while C is down reaches C when it returns;
//!   B killed with SIGKILL in the middle of a stream loses nothing A reported
//!   as sent.
//! - `line_of_twelve`: a public message crosses 11 hops, past Bitchat's TTL of 7.
//! - `line_of_three_over_ipv6_link_local_only`: segments without IPv4; the
//!   nodes find each other by IPv6 link-local beacons and relay.
//!
//! They need root and iproute2 and fail (not skip) without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common_netns;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common_netns::{Lab, client, contains, files_under, token, wait_for};

/// Discovery and the first announces.
const SETTLE: Duration = Duration::from_secs(20);
/// Delivery, including gossip sync and outbox retries after a restart.
const DELIVERY: Duration = Duration::from_secs(60);

#[test]
fn chain_of_three() {
    let started = Instant::now();
    let mut lab = Lab::new("chain", 77, 3);
    lab.veth(0, 1);
    lab.veth(1, 2);
    let (a, b, c) = (
        lab.node(0, "alice", false, true),
        lab.node(1, "bob", true, true),
        lab.node(2, "carol", false, true),
    );
    lab.start_all();
    let (a_id, c_id) = (lab.nodes[a].peer_id.clone(), lab.nodes[c].peer_id.clone());
    wait_for("A and C to know each other through B", SETTLE, || {
        let ac = lab.nodes[a].peers().iter().any(|(p, _)| *p == c_id);
        let ca = lab.nodes[c].peers().iter().any(|(p, _)| *p == a_id);
        (ac && ca).then_some(())
    });
    // They share no segment, so neither may count the other as a neighbour.
    assert!(lab.nodes[a].peers().iter().any(|(p, direct)| *p == c_id && !direct));

    eprintln!("chain settled after {:?}", started.elapsed());
    // a. A public message reaches C through B.
    let public = format!("public {}", token());
    let pub_id = lab.nodes[a].client(&["say", &public]).unwrap().trim().to_owned();
    let got = wait_for("A's public message at C", DELIVERY, || {
        lab.nodes[c].event("public_message", &pub_id)
    });
    assert_eq!(got["from"], a_id.as_str());
    assert_eq!(got["text"], public.as_str());
    eprintln!("public message reached C, hops as the TTL tells: {}", got["hops"]);

    // b. A private message reaches C; B, which relayed it, has no plaintext of it.
    let private = format!("private {}", token());
    let priv_id = lab.nodes[a].client(&["msg", "carol", &private]).unwrap().trim().to_owned();
    let got = wait_for("A's private message at C", DELIVERY, || {
        lab.nodes[c].event("private_message", &priv_id)
    });
    assert_eq!(got["from"], a_id.as_str());
    assert_eq!(got["text"], private.as_str());
    assert_no_plaintext(&lab, b, &[&private]);
    let log = std::fs::read(&lab.nodes[b].log).unwrap();
    assert!(!contains(&log, &public), "B's log holds the public text");

    eprintln!("a-b done after {:?}", started.elapsed());
    // c. C's delivered and read receipts reach A.
    lab.nodes[c].client(&["read", &a_id, &priv_id]).unwrap();
    for kind in ["delivered", "read"] {
        let e = wait_for(&format!("{kind} receipt at A"), DELIVERY, || {
            lab.nodes[a].event(kind, &priv_id)
        });
        assert_eq!(e["by"], c_id.as_str(), "{kind} receipt from the wrong peer");
    }

    eprintln!("c done after {:?}", started.elapsed());
    // d. A message written while C is down waits in A's outbox and arrives
    // when C is back.
    lab.nodes[c].stop();
    let later = format!("while you were out {}", token());
    let later_id = lab.nodes[a].client(&["msg", &c_id, &later]).unwrap().trim().to_owned();
    let outbox = lab.nodes[a].json(&["outbox", "--json"]);
    assert!(
        outbox.as_array().unwrap().iter().any(|m| m["id"] == later_id.as_str()),
        "not in A's outbox: {outbox}"
    );
    // Long enough for a send to C to have been tried and to have failed.
    thread::sleep(Duration::from_secs(1));
    assert!(lab.nodes[a].event("delivered", &later_id).is_none(), "delivered to a stopped node");
    lab.nodes[c].start();
    let back = Instant::now();
    let got = wait_for("the held message at C after its restart", DELIVERY, || {
        lab.nodes[c].history_entry(&later_id)
    });
    assert_eq!(got["direction"], "private_in");
    assert_eq!(got["text"], later.as_str());
    eprintln!("held message reached C {:?} after its restart", back.elapsed());
    wait_for("delivered receipt of the held message at A", DELIVERY, || {
        lab.nodes[a].event("delivered", &later_id)
    });
    wait_for("the held message to leave A's outbox", DELIVERY, || {
        let o = lab.nodes[a].json(&["outbox", "--json"]);
        (!o.as_array().unwrap().iter().any(|m| m["id"] == later_id.as_str())).then_some(())
    });
    eprintln!("chain a-d done after {:?}", started.elapsed());

    // e. B is killed with SIGKILL in the middle of a stream from A to C and
    // restarted; nothing A reported as sent is lost.
    wait_for("C to be linked through B again", SETTLE, || {
        lab.nodes[a].peers().iter().any(|(p, _)| *p == c_id).then_some(())
    });
    let sent = Arc::new(AtomicUsize::new(0));
    let stream = {
        let (dir, c_id, sent) = (lab.nodes[a].dir.clone(), c_id.clone(), sent.clone());
        thread::spawn(move || {
            let mut ok = Vec::new();
            let mut failed = Vec::new();
            for i in 0..60 {
                let private = i % 2 == 1;
                let text = format!("stream {i} {}", token());
                let r = if private {
                    client(&dir, &["msg", &c_id, &text])
                } else {
                    client(&dir, &["say", &text])
                };
                match r {
                    Ok(id) if !id.trim().is_empty() => {
                        ok.push((id.trim().to_owned(), text, private));
                    }
                    Ok(_) => failed.push(format!("{i}: no id")),
                    Err(e) => failed.push(format!("{i}: {e}")),
                }
                sent.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(100));
            }
            (ok, failed)
        })
    };
    wait_for("a third of the stream", DELIVERY, || {
        (sent.load(Ordering::SeqCst) >= 20).then_some(())
    });
    lab.nodes[b].kill9();
    let killed_at = sent.load(Ordering::SeqCst);
    wait_for("half the stream", DELIVERY, || (sent.load(Ordering::SeqCst) >= 30).then_some(()));
    lab.nodes[b].start();
    let restarted_at = sent.load(Ordering::SeqCst);
    let (ok, failed) = stream.join().unwrap();
    eprintln!(
        "stream: {} sent, {} refused {failed:?}; B killed after {killed_at}, back after {restarted_at}",
        ok.len(),
        failed.len()
    );
    // A's side never depends on B, so every command should have been taken.
    assert!(ok.len() >= 55, "A refused too much of the stream: {failed:?}");
    let t = Instant::now();
    let deadline = t + DELIVERY;
    loop {
        let have: BTreeSet<String> = lab.nodes[c]
            .history()
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        let missing: Vec<&str> =
            ok.iter().filter(|(id, ..)| !have.contains(id)).map(|(_, t, _)| t.as_str()).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {DELIVERY:?} C still lacks {} of the {} messages A sent: {missing:?}",
            missing.len(),
            ok.len()
        );
        thread::sleep(Duration::from_millis(250));
    }
    eprintln!("C had the whole stream {:?} after it ended", t.elapsed());
    // Every private one was also acknowledged.
    wait_for("A's outbox to empty", DELIVERY, || {
        lab.nodes[a].json(&["outbox", "--json"]).as_array().unwrap().is_empty().then_some(())
    });
    // B's log across both runs, and its data directory, still hold no private plaintext.
    let private_texts: Vec<&str> = ok
        .iter()
        .filter(|(.., private)| *private)
        .map(|(_, t, _)| t.as_str())
        .chain([private.as_str(), later.as_str()])
        .collect();
    assert_no_plaintext(&lab, b, &private_texts);
    eprintln!("chain_of_three took {:?}", started.elapsed());
}

#[test]
fn line_of_twelve() {
    let started = Instant::now();
    const N: usize = 12;
    let mut lab = Lab::new("line", 78, N);
    for i in 0..N - 1 {
        lab.veth(i, i + 1);
    }
    for i in 0..N {
        lab.node(i, &format!("n{i}"), false, false);
    }
    lab.start_all();
    // Settled: every node has announced itself to its neighbours on each link.
    wait_for("every node to see its neighbours", SETTLE, || {
        (0..N)
            .all(|i| {
                let peers = lab.nodes[i].peers();
                let want = [i.checked_sub(1), (i + 1 < N).then_some(i + 1)];
                want.iter()
                    .flatten()
                    .all(|&j| peers.iter().any(|(p, direct)| *p == lab.nodes[j].peer_id && *direct))
            })
            .then_some(())
    });
    eprintln!("line settled after {:?}", started.elapsed());
    let text = format!("end to end {}", token());
    let id = lab.nodes[0].client(&["say", &text]).unwrap().trim().to_owned();
    let sent = Instant::now();
    let got = wait_for("the public message at the far end", DELIVERY, || {
        lab.nodes[N - 1].history_entry(&id)
    });
    assert_eq!(got["direction"], "public");
    assert_eq!(got["text"], text.as_str());
    assert_eq!(got["peer_id"], lab.nodes[0].peer_id.as_str());
    eprintln!("11 hops took {:?}; line_of_twelve took {:?}", sent.elapsed(), started.elapsed());
}

#[test]
fn line_of_three_over_ipv6_link_local_only() {
    let mut lab = Lab::new("ipv6", 79, 3);
    // No IPv4 anywhere; the nodes start while duplicate address detection
    // may still hold the link-local addresses.
    lab.veth_v6_only(0, 1);
    lab.veth_v6_only(1, 2);
    for i in 0..3 {
        lab.node(i, &format!("v{i}"), false, false);
    }
    lab.start_all();
    let far = lab.nodes[2].peer_id.clone();
    wait_for("the ends to know each other", SETTLE, || {
        lab.nodes[0].peers().iter().any(|(p, _)| *p == far).then_some(())
    });
    let text = format!("over IPv6 {}", token());
    let id = lab.nodes[0].client(&["say", &text]).unwrap().trim().to_owned();
    let got =
        wait_for("the public message at the far end", DELIVERY, || lab.nodes[2].history_entry(&id));
    assert_eq!(got["text"], text.as_str());
}

/// Neither `node`'s log nor any file in its data directory holds any of `texts`.
fn assert_no_plaintext(lab: &Lab, node: usize, texts: &[&str]) {
    let n = &lab.nodes[node];
    let mut files = files_under(&n.dir);
    let log = std::fs::read(&n.log).unwrap();
    // Only a log that shows the relayed frames proves anything by what it lacks.
    assert!(contains(&log, "frame out"), "{} has no trace lines", n.log.display());
    files.push((n.log.clone(), log));
    assert!(files.len() > 1, "no data files to look at in {}", n.dir.display());
    for (path, bytes) in &files {
        for t in texts {
            assert!(!contains(bytes, t), "{} holds the plaintext {t:?}", path.display());
        }
    }
}
