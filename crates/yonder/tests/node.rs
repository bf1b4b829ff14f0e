//! Two real `yonder up` processes linked over loopback (a static peer, no
//! discovery), driven through the control socket and the command line:
//! verification, blocking, nicknames, the panic wipe, and how client
//! commands fail when something is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use yonder::client::{Client, ClientError};
use yonder::control::{FaultName, Request};

const BIN: &str = env!("CARGO_BIN_EXE_yonder");

struct Node {
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("toml"));
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(self.dir.with_extension("log"));
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("yonder-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[allow(clippy::unwrap_used)]
fn spawn(dir: &Path, nick: &str, port: u16, peer: Option<u16>) -> Child {
    let log = std::fs::File::create(dir.with_extension("log")).unwrap();
    // No discovery: other nodes on this host must not join the test.
    let config = dir.with_extension("toml");
    std::fs::write(&config, "[lan]\ninterfaces = []\n[ble]\nenabled = false\n").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(dir).args(["up", "--nick", nick, "--config"]).arg(&config);
    cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
    if let Some(p) = peer {
        cmd.args(["--peer", &format!("127.0.0.1:{p}")]);
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Client::connect(dir).and_then(|mut c| c.request(&Request::Status)).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("node in {} did not start", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn start(name: &str, port: u16, peer: Option<u16>) -> Node {
    let dir = temp(name);
    let child = spawn(&dir, name, port, peer);
    Node { dir, child: Some(child) }
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("condition not met within {limit:?}");
}

#[allow(clippy::unwrap_used)]
fn req(n: &Node, r: &Request) -> Result<Value, ClientError> {
    Client::connect(&n.dir).unwrap().request(r)
}

#[allow(clippy::unwrap_used)]
fn id_of(n: &Node) -> (String, String) {
    let v = req(n, &Request::Id).unwrap();
    (v["peer_id"].as_str().unwrap().to_owned(), v["fingerprint"].as_str().unwrap().to_owned())
}

#[allow(clippy::unwrap_used)]
fn peers(n: &Node) -> Vec<Value> {
    req(n, &Request::Peers).unwrap()["peers"].as_array().unwrap().clone()
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).arg("--data-dir").arg(dir).args(args).output().unwrap_or_else(|e| {
        panic!("running yonder: {e}");
    })
}

/// A linked pair: alice listens, bob dials her.
fn pair(tag: &str) -> (Node, Node) {
    let (pa, pb) = (free_port(), free_port());
    let a = start(&format!("alice-{tag}"), pa, None);
    let b = start(&format!("bob-{tag}"), pb, Some(pa));
    wait_for(Duration::from_secs(20), || peers(&a).len() == 1 && peers(&b).len() == 1);
    (a, b)
}

#[test]
fn verification_accepts_the_right_fingerprint_and_refuses_a_wrong_one() {
    let (a, b) = pair("verify");
    let (b_id, b_fp) = id_of(&b);
    let wrong = format!("{}0", &b_fp[..63]);
    let wrong = if wrong == b_fp { format!("{}1", &b_fp[..63]) } else { wrong };
    let err = req(&a, &Request::Verify { peer: b_id.clone(), fingerprint: wrong }).unwrap_err();
    assert!(matches!(err, ClientError::Refused { fault: FaultName::Peer, .. }), "{err}");
    assert_eq!(peers(&a)[0]["verified"], false);
    // The grouped form people read aloud is accepted too.
    let grouped: Vec<String> =
        b_fp.as_bytes().chunks(8).map(|c| String::from_utf8_lossy(c).into()).collect();
    let out = cli(&a.dir, &["verify", "bob-verify", &grouped.join(" ")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p = &peers(&a)[0];
    assert_eq!(
        (p["peer_id"].as_str().unwrap(), p["verified"].as_bool()),
        (b_id.as_str(), Some(true))
    );
}

#[test]
fn a_blocked_peer_is_not_heard_and_a_new_nickname_is_seen() {
    let (a, b) = pair("block");
    let mut events = Client::connect(&a.dir).unwrap().events().unwrap();
    req(&a, &Request::Block { peer: "bob-block".into() }).unwrap();
    let frames_in = |n: &Node| req(n, &Request::Status).unwrap()["frames_in"].as_u64().unwrap();
    let before = frames_in(&a);
    req(&b, &Request::Say { text: "while blocked".into() }).unwrap();
    // Unblock only once alice has taken the message in (one TCP link keeps order).
    wait_for(Duration::from_secs(10), || frames_in(&a) > before);
    req(&a, &Request::Unblock { peer: "bob-block".into() }).unwrap();
    req(&b, &Request::Say { text: "after unblock".into() }).unwrap();
    let mut texts = Vec::new();
    while texts.is_empty() {
        let (raw, _) = events.next().unwrap().unwrap();
        let v: Value = serde_json::from_str(&raw).unwrap();
        if v["kind"] == "public_message" {
            texts.push(v["text"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(texts, ["after unblock"]);

    req(&b, &Request::Nick { name: "robert".into() }).unwrap();
    wait_for(Duration::from_secs(20), || peers(&a)[0]["nick"] == "robert");
    // Refused nicknames leave the old one.
    assert!(req(&b, &Request::Nick { name: "a\u{7}b".into() }).is_err());
    assert_eq!(id_of(&b).0, peers(&a)[0]["peer_id"].as_str().unwrap());
}

#[test]
fn wipe_destroys_the_identity_at_once_and_neighbours_hear_the_leave() {
    let (mut a, b) = pair("wipe");
    let (old_id, _) = id_of(&a);
    req(&a, &Request::Say { text: "before the wipe".into() }).unwrap();
    let refused = cli(&a.dir, &["wipe"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));

    let out = cli(&a.dir, &["wipe", "--yes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!a.dir.join("identity.key").exists());
    assert!(!a.dir.join("yonder.redb").exists());
    let status = a.child.as_mut().unwrap().wait().unwrap();
    assert!(status.success());
    // Bob hears the LEAVE rather than waiting out the peer expiry.
    wait_for(Duration::from_secs(5), || peers(&b).is_empty());

    // The next start is someone new, with no history.
    let port = free_port();
    a.child = Some(spawn(&a.dir, "alice-again", port, None));
    let (new_id, _) = id_of(&a);
    assert_ne!(new_id, old_id);
    let h = req(&a, &Request::History { limit: 100 }).unwrap();
    assert_eq!(h["messages"].as_array().unwrap().len(), 0);
}

#[test]
fn client_commands_fail_cleanly() {
    let dir = temp("nobody");
    let out = cli(&dir, &["say", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no node is running"), "{err}");
    assert!(!err.contains("panicked"));

    let (a, _b) = pair("errors");
    for (args, needle) in [
        (&["msg", "nobody-by-that-name", "hi"][..], "no known peer"),
        (&["say", "   "][..], "empty message"),
        (&["nick", "x#y"][..], "no '#'"),
        (&["verify", "bob-errors", "zz"][..], "fingerprint"),
    ] {
        let out = cli(&a.dir, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Garbage on the socket is answered with an error, and the node lives on.
    {
        use std::io::{BufRead as _, BufReader, Write as _};
        let mut s = std::os::unix::net::UnixStream::connect(a.dir.join("control.sock")).unwrap();
        s.write_all(b"{not json\n{\"cmd\":\"status\"}\n").unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("\"ok\":false"), "{line}");
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("\"ok\":true"), "{line}");
    }
    let out = cli(&a.dir, &["peers", "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn id_gives_a_qr_code_of_a_signed_bitchat_verification_url() {
    let dir = temp("qr");
    let mut n = Node { dir: dir.clone(), child: None };
    n.child = Some(spawn(&dir, "quinn", free_port(), None));
    let out = cli(&dir, &["id", "--json"]);
    assert!(out.status.success());
    let id: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(id["nick"], "quinn");
    assert_eq!(id["peer_id"].as_str().unwrap().len(), 16);
    assert_eq!(id["fingerprint"].as_str().unwrap().len(), 64);

    let out = cli(&dir, &["id", "--qr"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // Half-block characters draw the code; the URL follows it.
    assert!(text.contains('█') || text.contains('▀'), "no QR code drawn:\n{text}");
    let url = text.lines().find(|l| l.starts_with("bitchat://verify?")).unwrap();
    let fields: std::collections::BTreeMap<&str, &str> =
        url["bitchat://verify?".len()..].split('&').map(|kv| kv.split_once('=').unwrap()).collect();
    assert_eq!(fields["v"], "1");
    assert_eq!(fields["nick"], "quinn");
    // The noise key is the one the fingerprint names, and the signature
    // checks out over Bitchat's length-prefixed fields.
    let noise: [u8; 32] = hex::decode(fields["noise"]).unwrap().try_into().unwrap();
    assert_eq!(yonder_crypto::fingerprint_of(&noise).to_hex(), id["fingerprint"].as_str().unwrap());
    let sign: [u8; 32] = hex::decode(fields["sign"]).unwrap().try_into().unwrap();
    let sig: [u8; 64] = hex::decode(fields["sig"]).unwrap().try_into().unwrap();
    let mut signed = Vec::new();
    for f in [
        "bitchat-verify-v1",
        "1",
        fields["noise"],
        fields["sign"],
        "",
        "quinn",
        fields["ts"],
        fields["nonce"],
    ] {
        signed.push(f.len() as u8);
        signed.extend_from_slice(f.as_bytes());
    }
    yonder_crypto::verify(&sign, &signed, &sig).unwrap();
    signed[20] ^= 1;
    assert!(yonder_crypto::verify(&sign, &signed, &sig).is_err());
}

#[test]
fn room_commands_work_alone_and_refuse_cleanly() {
    let n = start("rooms", free_port(), None);
    let ok = |args: &[&str]| {
        let out = cli(&n.dir, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let refused = |args: &[&str], needle: &str| {
        let out = cli(&n.dir, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"));
    };
    assert!(ok(&["room", "status", "--json"]).is_null());
    refused(&["room", "leave"], "not in a room");
    refused(&["room", "hand"], "not in a room");
    refused(&["room", "join", "ffff"], "no room");
    let created = ok(&["room", "create", "Quiet hour", "--topic", "night"]);
    let room = created["room"].as_str().unwrap().to_owned();
    let st = ok(&["room", "status", "--json"]);
    assert_eq!(st["room"], room.as_str());
    assert_eq!(st["title"], "Quiet hour");
    assert_eq!((st["host"].clone(), st["member"].clone()), (Value::Bool(true), Value::Bool(true)));
    assert_eq!(st["members"][0]["role"], "host");
    assert_eq!(st["members"][0]["me"], true);
    refused(&["room", "create", "Another"], "already in a room");
    refused(&["room", "invite", "nobody"], "no member");
    refused(&["room", "speak"], "not allowed");
    refused(&["room", "play", "/nonexistent/in.wav"], "reading");
    refused(&["room", "rec", "maybe"], "unknown recording step");
    // No sound card here: with or without the `devices` feature the answer
    // is an error about sound devices, not a crash.
    refused(&["room", "mic"], "sound device");
    let bad = req(&n, &Request::RoomAct { action: "fly".into(), member: None, ban: false });
    assert!(matches!(bad, Err(ClientError::Refused { fault: FaultName::Local, .. })), "{bad:?}");
    // Metadata: a new title and topics; a schedule past 14 days is refused.
    ok(&["room", "meta", "--title", "Loud hour", "--topic", "a", "--topic", "b"]);
    assert_eq!(ok(&["room", "status", "--json"])["title"], "Loud hour");
    refused(&["room", "meta", "--in-minutes", "30000"], "14 days");
    refused(
        &["room", "meta", "--topic", "1", "--topic", "2", "--topic", "3", "--topic", "4"],
        "topic",
    );
    // The host unmutes, then ends the room by leaving it.
    ok(&["room", "mute", "--off"]);
    let st = ok(&["room", "status", "--json"]);
    assert_eq!(st["members"][0]["muted"], false);
    let left = ok(&["room", "leave"]);
    assert_eq!(left["room"], room.as_str());
    assert!(ok(&["room", "status", "--json"]).is_null());
}

#[test]
fn an_invite_only_room_is_joined_by_an_invitation_over_noise_and_by_nothing_else() {
    let (a, b) = pair("invite");
    let json = |n: &Node, args: &[&str]| {
        let out = cli(&n.dir, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let room = json(&a, &["room", "create", "Inner circle", "--invite-only"])["room"]
        .as_str()
        .unwrap()
        .to_owned();
    // Never announced: B hears nothing of it while public cards come every 500 ms.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(json(&b, &["room", "list", "--json"]), serde_json::json!([]));
    let out = cli(&b.dir, &["room", "join", &room[..8]]);
    assert!(!out.status.success());
    // Only the host invites.
    let out = cli(&b.dir, &["room", "send", "alice-invite"]);
    assert!(!out.status.success());
    let sent = json(&a, &["room", "send", "bob-invite"]);
    assert_eq!(sent["peer_id"], id_of(&b).0.as_str());
    wait_for(Duration::from_secs(20), || {
        let list = json(&b, &["room", "list", "--json"]);
        list.as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"] == room.as_str() && r["invited_by"] == id_of(&a).0.as_str())
    });
    json(&b, &["room", "join", &room[..8]]);
    wait_for(Duration::from_secs(20), || json(&b, &["room", "status", "--json"])["member"] == true);
    let st = json(&a, &["room", "status", "--json"]);
    assert_eq!(st["members"].as_array().unwrap().len(), 2);
    assert!(st["members"].as_array().unwrap().iter().any(|m| m["name"] == "bob-invite"));
}
