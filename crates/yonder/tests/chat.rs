//! `yonder chat`: the app driven with events, replies and keys and drawn on
//! a test backend (compared with the screens in `tests/snapshots/`; run
//! with `UPDATE_SNAPSHOTS=1` to rewrite them after an intended change), the
//! command line's commands, and the connection shell against a real node
//! started inside the test.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use serde_json::json;
use yonder::chat::{Action, App, Flow, Session};
use yonder::control::{EventLine, HistoryItem, IdInfo, OutboxItem, PeerInfo, Request};
use yonder::daemon::config::UpArgs;

const ME: &str = "a1a1a1a1a1a1a1a1";
const BOB1: &str = "b0b1000000000001";
const BOB2: &str = "b0b2000000000002";
const CAROL: &str = "c4201c4201c4201c";
/// 2024-01-01 12:00:00 UTC.
const T0: u64 = 1_704_110_400_000;

fn app() -> App {
    let mut app = App::new();
    app.on_id(IdInfo {
        peer_id: ME.into(),
        fingerprint: "00".repeat(32),
        nick: "alice".into(),
        verify_url: String::new(),
    });
    app
}

fn peer(id: &str, nick: &str) -> PeerInfo {
    PeerInfo {
        peer_id: id.into(),
        nick: nick.into(),
        fingerprint: String::new(),
        hops: 1,
        direct: true,
        verified: false,
        favourite: false,
        blocked: false,
        session: true,
    }
}

fn public(id: &str, from: &str, nick: &str, text: &str, secs: u64) -> EventLine {
    EventLine::PublicMessage {
        id: id.into(),
        from: from.into(),
        nick: nick.into(),
        text: text.into(),
        timestamp: T0 + secs * 1000,
        hops: 1,
    }
}

fn private(id: &str, from: &str, nick: &str, text: &str, secs: u64) -> EventLine {
    EventLine::PrivateMessage {
        id: id.into(),
        from: from.into(),
        nick: nick.into(),
        text: text.into(),
        timestamp: T0 + secs * 1000,
    }
}

fn sent(id: &str, to: Option<&str>, text: &str, secs: u64) -> EventLine {
    EventLine::Sent {
        id: id.into(),
        to: to.map(str::to_owned),
        nick: "alice".into(),
        text: text.into(),
        timestamp: T0 + secs * 1000,
    }
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
}

fn req(r: Request) -> Action {
    Action::Request(r)
}

/// The buffer as text, one line per row, trailing spaces cut; cells hidden
/// behind a wide character are skipped.
fn buffer_text(buf: &Buffer) -> String {
    let width = usize::from(buf.area.width).max(1);
    let mut out = String::new();
    for row in buf.content.chunks(width) {
        let mut line = String::new();
        let mut skip = 0usize;
        for cell in row {
            if skip == 0 {
                line.push_str(cell.symbol());
            }
            let w = ratatui::text::Span::raw(cell.symbol()).width();
            skip = skip.max(w).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[allow(clippy::unwrap_used)]
fn draw(app: &mut App, width: u16, height: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(width, height)).unwrap();
    term.draw(|f| app.render(f)).unwrap();
    buffer_text(term.backend().buffer())
}

/// Compares `actual` with `tests/snapshots/NAME.txt`, or writes it there
/// when `UPDATE_SNAPSHOTS=1`.
#[allow(clippy::unwrap_used)]
fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("no snapshot {}; run with UPDATE_SNAPSHOTS=1 to write it", path.display())
    });
    if expected != actual {
        let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
        let mut diff = String::new();
        for i in 0..e.len().max(a.len()) {
            let (x, y) = (e.get(i).copied().unwrap_or(""), a.get(i).copied().unwrap_or(""));
            if x != y {
                diff.push_str(&format!("line {:>2} expected |{x}\n        actual   |{y}\n", i + 1));
            }
        }
        panic!(
            "screen differs from {} (UPDATE_SNAPSHOTS=1 rewrites it):\n{diff}\nwhole screen:\n{actual}",
            path.display()
        );
    }
}

#[test]
fn equal_nicknames_get_peer_id_suffixes_in_the_public_timeline() {
    let mut app = app();
    app.on_peers(vec![peer(BOB1, "bob"), peer(BOB2, "bob"), peer(CAROL, "carol")]);
    app.on_event(public("p1", BOB1, "bob", "hi all", 1));
    app.on_event(public("p2", BOB2, "bob", "I am bob too", 2));
    app.on_event(public("p3", CAROL, "carol", "hello bobs", 3));
    app.on_event(sent("p4", None, "welcome", 4));
    app.on_event(EventLine::PeerUp { peer_id: CAROL.into(), nick: "carol".into() });
    let t = app.transcript(0);
    assert_eq!(t[0], "12:00:01 <bob#b0b1> hi all");
    assert_eq!(t[1], "12:00:02 <bob#b0b2> I am bob too");
    assert_eq!(t[2], "12:00:03 <carol> hello bobs");
    assert_eq!(t[3], "12:00:04 <alice> welcome");
    snapshot("public_shared_nicks", &draw(&mut app, 90, 12));

    // A peer named before its namesake showed up is suffixed from then on, joins included.
    let mut app = self::app();
    app.on_event(EventLine::PeerUp { peer_id: BOB1.into(), nick: "bob".into() });
    assert_eq!(app.transcript(0), ["* bob joined"]);
    app.on_event(EventLine::PeerUp { peer_id: BOB2.into(), nick: "bob".into() });
    assert_eq!(app.transcript(0), ["* bob#b0b1 joined", "* bob#b0b2 joined"]);

    // Someone taking our own nickname makes both of us suffixed.
    app.on_peers(vec![peer(BOB1, "bob"), peer(CAROL, "alice")]);
    assert_eq!(app.name("alice", ME), "alice#a1a1");
    assert_eq!(app.name("alice", CAROL), "alice#c420");
    // Nicknames differing only in case or invisible characters count as shared.
    app.on_peers(vec![peer(BOB1, "Bob"), peer(BOB2, "b\u{200b}ob"), peer(CAROL, "carol")]);
    assert_eq!(app.name("Bob", BOB1), "Bob#b0b1");
    assert_eq!(app.name("carol", CAROL), "carol");
}

#[test]
fn private_pane_shows_delivery_and_read_marks() {
    let mut app = app();
    app.on_peers(vec![peer(BOB1, "bob"), peer(CAROL, "carol")]);
    let actions = app.submit("/msg bob");
    assert!(actions.is_empty());
    assert_eq!(app.focused(), 1);
    assert_eq!(app.pane_title(1), "bob");
    assert_eq!(
        app.submit("first"),
        vec![req(Request::Msg { peer: BOB1.into(), text: "first".into() })]
    );
    app.on_event(sent("m1", Some(BOB1), "first", 1));
    app.on_event(sent("m2", Some(BOB1), "second", 2));
    app.on_event(sent("m3", Some(BOB1), "third", 3));
    app.on_event(sent("m4", Some(BOB1), "fourth", 4));
    app.on_event(EventLine::Delivered { id: "m1".into(), by: BOB1.into() });
    app.on_event(EventLine::Read { id: "m2".into(), by: BOB1.into() });
    // A late delivery receipt does not take the read mark back.
    app.on_event(EventLine::Delivered { id: "m2".into(), by: BOB1.into() });
    app.on_event(EventLine::SendFailed {
        id: "m4".into(),
        to: BOB1.into(),
        reason: "no route".into(),
    });
    // A message arriving in the pane on screen is acknowledged as read at once.
    let acks = app.on_event(private("r1", BOB1, "bob", "got them", 5));
    assert_eq!(acks, vec![req(Request::Read { peer: BOB1.into(), id: "r1".into() })]);
    assert_eq!(app.unread(1), 0);
    // Receipts for messages never shown are ignored.
    app.on_event(EventLine::Read { id: "unknown".into(), by: BOB1.into() });
    let t = app.transcript(1);
    assert_eq!(t[0], "12:00:01 <alice> first ✓");
    assert_eq!(t[1], "12:00:02 <alice> second ✓✓");
    assert_eq!(t[2], "12:00:03 <alice> third …");
    assert_eq!(t[3], "12:00:04 <alice> fourth ✗");
    snapshot("private_marks", &draw(&mut app, 90, 12));
}

#[test]
fn unread_counts_grow_in_panes_not_shown_and_showing_sends_read_receipts() {
    let mut app = app();
    app.on_peers(vec![peer(BOB1, "bob"), peer(CAROL, "carol")]);
    assert!(app.on_event(private("c1", CAROL, "carol", "psst", 1)).is_empty());
    assert!(app.on_event(private("c2", CAROL, "carol", "are you there?", 2)).is_empty());
    assert!(app.on_event(private("b1", BOB1, "bob", "hey", 3)).is_empty());
    app.on_event(public("p1", BOB1, "bob", "public words", 4));
    assert_eq!((app.unread(0), app.unread(1), app.unread(2)), (0, 2, 1));
    snapshot("unread_counts", &draw(&mut app, 90, 8));

    // Tab shows carol's pane and owes her two read receipts.
    let acks = app.on_key(key(KeyCode::Tab));
    assert_eq!(
        acks,
        vec![
            req(Request::Read { peer: CAROL.into(), id: "c1".into() }),
            req(Request::Read { peer: CAROL.into(), id: "c2".into() }),
        ]
    );
    assert_eq!(app.unread(1), 0);
    // Public messages now count as unread in the public pane.
    app.on_event(public("p2", CAROL, "carol", "to all", 5));
    assert_eq!(app.unread(0), 1);
    // Shift-Tab goes back; Alt-3 jumps to bob's pane and acknowledges his message.
    assert!(app.on_key(key(KeyCode::BackTab)).is_empty());
    assert_eq!((app.focused(), app.unread(0)), (0, 0));
    let acks = app.on_key(KeyEvent::new(KeyCode::Char('3'), KeyModifiers::ALT));
    assert_eq!(acks, vec![req(Request::Read { peer: BOB1.into(), id: "b1".into() })]);
    assert_eq!(app.focused(), 2);
    // Receipts are sent once.
    app.on_key(key(KeyCode::Tab));
    assert!(app.on_key(KeyEvent::new(KeyCode::Char('3'), KeyModifiers::ALT)).is_empty());
    // Alt with a pane number that does not exist does nothing.
    assert!(app.on_key(KeyEvent::new(KeyCode::Char('9'), KeyModifiers::ALT)).is_empty());
    assert_eq!(app.focused(), 2);
}

#[test]
fn peer_list_shows_verified_favourite_blocked_and_hops() {
    let mut app = app();
    let mut bob = peer(BOB1, "bob");
    bob.verified = true;
    let mut bob2 = peer(BOB2, "bob");
    bob2.blocked = true;
    bob2.hops = 2;
    bob2.direct = false;
    let mut carol = peer(CAROL, "carol");
    carol.favourite = true;
    carol.verified = true;
    carol.hops = 3;
    carol.direct = false;
    let dave = peer("d4d4d4d4d4d4d4d4", "dave-with-a-very-long-nickname");
    let dave2 = peer("e5e5e5e5e5e5e5e5", "dave-with-a-very-long-nickname");
    app.on_peers(vec![bob, bob2, carol, dave, dave2]);
    let screen = draw(&mut app, 90, 9);
    snapshot("peer_list", &screen);
    assert!(screen.contains("★✔  carol"), "{screen}");
    assert!(screen.contains(" ✔  bob#b0b1"), "{screen}");
    assert!(screen.contains("  ⊘ bob#b0b2"), "{screen}");
    // Long shared nicknames are cut before the suffix, which must stay.
    assert!(screen.contains("dave-with-a…#d4d4"), "{screen}");
    assert!(screen.contains("dave-with-a…#e5e5"), "{screen}");
    // /who lists the same in the timeline.
    app.submit("/who");
    let t = app.transcript(0);
    assert_eq!(t[0], "* 5 peers in reach:");
    assert_eq!(t[1], "*   carol (3 hops, mesh, verified, favourite)");
    assert_eq!(t[2], "*   bob#b0b1 (1 hop, direct, verified)");
    assert_eq!(t[3], "*   bob#b0b2 (2 hops, mesh, blocked)");
}

#[test]
fn help_lists_the_commands() {
    let mut app = app();
    assert!(app.submit("/help").is_empty());
    snapshot("help", &draw(&mut app, 100, 22));
}

#[test]
fn commands_turn_into_requests() {
    let mut app = app();
    app.on_peers(vec![peer(BOB1, "bob"), peer(CAROL, "carol")]);
    assert_eq!(
        app.submit("hello everyone"),
        vec![req(Request::Say { text: "hello everyone".into() })]
    );
    assert_eq!(
        app.submit("/m bob hi there"),
        vec![req(Request::Msg { peer: BOB1.into(), text: "hi there".into() })]
    );
    assert_eq!(app.focused(), 1, "/m opens and shows the pane");
    assert_eq!(
        app.submit("more"),
        vec![req(Request::Msg { peer: BOB1.into(), text: "more".into() })]
    );
    assert_eq!(app.submit("/block"), vec![req(Request::Block { peer: BOB1.into() })]);
    assert_eq!(app.submit("/fav carol"), vec![req(Request::Fav { peer: "carol".into() })]);
    assert_eq!(app.submit("/unfav"), vec![req(Request::Unfav { peer: BOB1.into() })]);
    assert_eq!(app.submit("/unblock bob"), vec![req(Request::Unblock { peer: "bob".into() })]);
    assert_eq!(app.submit("/nick alicia"), vec![req(Request::Nick { name: "alicia".into() })]);
    assert_eq!(
        app.submit("//me waves"),
        vec![req(Request::Msg { peer: BOB1.into(), text: "/me waves".into() })]
    );
    assert_eq!(app.submit("/quit"), vec![Action::Quit]);
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        vec![Action::Quit]
    );

    // In the public pane /block needs a name.
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focused(), 0);
    assert!(app.submit("/block").is_empty());
    assert!(app.submit("/frobnicate now").is_empty());
    assert!(app.submit("/m nobody hi").is_empty());
    app.on_peers(vec![peer(BOB1, "bob"), peer(BOB2, "bob")]);
    assert!(app.submit("/m bob hi").is_empty());
    assert_eq!(
        app.submit("/m bob#b0b2 hi"),
        vec![req(Request::Msg { peer: BOB2.into(), text: "hi".into() })]
    );
    app.on_key(key(KeyCode::BackTab));
    app.on_key(key(KeyCode::BackTab));
    assert_eq!(app.focused(), 0);
    let t = app.transcript(0);
    assert_eq!(t[0], "! usage: /block NICK (or use it in a private pane)");
    assert_eq!(t[1], "! unknown command /frobnicate (/help lists them)");
    assert_eq!(t[2], "! no known peer matches \"nobody\" (/who)");
    assert_eq!(t[3], "! \"bob\" could be any of bob#b0b1, bob#b0b2; name one of them");

    app.on_event(sent("s1", Some(BOB1), "hi there", 1));
    // /clear empties only the pane shown.
    assert!(app.submit("/clear").is_empty());
    assert!(app.transcript(0).is_empty());
    assert!(!app.transcript(1).is_empty());
}

#[test]
fn replies_become_lines_and_refusals_never_crash() {
    let mut app = app();
    let mut bob = peer(BOB1, "bob");
    app.on_peers(vec![bob.clone()]);
    // A refusal is shown in the pane on screen.
    app.on_reply(&Request::Say { text: "x".into() }, Err("text too long".into()));
    // Flag changes are confirmed and refresh the peer list.
    let again = app
        .on_reply(&Request::Fav { peer: "bob".into() }, Ok(json!({"ok": true, "peer_id": BOB1})));
    assert_eq!(again, vec![req(Request::Peers)]);
    // Failed read receipts are not worth a line.
    app.on_reply(&Request::Read { peer: BOB1.into(), id: "x".into() }, Err("gone".into()));
    // Answers that are not the protocol are reported, not trusted.
    app.on_reply(&Request::Peers, Ok(json!({"ok": true, "peers": "nope"})));
    app.on_reply(&Request::History { limit: 5 }, Ok(json!({"ok": true})));
    bob.favourite = true;
    app.on_reply(&Request::Peers, Ok(json!({"ok": true, "peers": [bob]})));
    let t = app.transcript(0);
    assert_eq!(t[0], "! text too long");
    assert_eq!(t[1], "* favourite: bob");
    assert!(t[2].starts_with("! the node's answer is not understood"), "{t:?}");
    assert!(t[3].starts_with("! the node's answer is not understood"), "{t:?}");
    assert_eq!(t.len(), 4);
}

#[test]
fn odd_text_from_peers_is_cleaned_and_small_screens_do_not_break() {
    let mut app = app();
    app.on_event(public(
        "p1",
        BOB1,
        "b\u{1b}[2Job",
        "red\u{1b}[31m\u{7}\r\nline\u{202e}gnp.exe",
        1,
    ));
    app.on_event(private("q1", "not-hex", "", "\u{0}", 2));
    app.on_event(EventLine::Lagged { missed: 3 });
    app.on_event(EventLine::PeerDown { peer_id: "x".into(), nick: "\u{1b}".into() });
    let t = app.transcript(0);
    assert_eq!(t[0], "12:00:01 <b[2Job> red[31m  linegnp.exe");
    for (w, h) in [(1, 1), (2, 2), (10, 3), (20, 4), (40, 5), (200, 60)] {
        for i in 0..app.pane_count() {
            while app.focused() != i {
                app.on_key(key(KeyCode::Tab));
            }
            let screen = draw(&mut app, w, h);
            assert!(!screen.contains('\u{1b}'));
        }
    }
}

#[test]
fn long_lines_wrap_and_page_keys_scroll() {
    let mut app = app();
    app.on_peers(vec![peer(BOB1, "bob")]);
    app.on_event(public(
        "long",
        BOB1,
        "bob",
        "this message is far too long for one row of a narrow terminal so it wraps onto the next rows",
        0,
    ));
    for i in 1..=20 {
        app.on_event(public(&format!("n{i}"), BOB1, "bob", &format!("number {i}"), i));
    }
    // Narrow: no peer list; the newest rows are shown.
    let bottom = draw(&mut app, 40, 8);
    assert!(bottom.contains("number 20"), "{bottom}");
    assert!(!bottom.contains("scrolled up"), "{bottom}");
    for _ in 0..5 {
        app.on_key(key(KeyCode::PageUp));
    }
    snapshot("wrapped_top", &draw(&mut app, 40, 8));
    app.on_key(key(KeyCode::PageDown));
    let middle = draw(&mut app, 40, 8);
    assert!(middle.contains("number 4"), "{middle}");
    for _ in 0..5 {
        app.on_key(key(KeyCode::PageDown));
    }
    assert_eq!(draw(&mut app, 40, 8), bottom);
}

#[test]
fn the_input_line_edits_and_remembers() {
    let mut app = app();
    type_text(&mut app, "helo");
    app.on_key(key(KeyCode::Left));
    type_text(&mut app, "l");
    assert_eq!(app.input(), "hello");
    app.on_key(key(KeyCode::Home));
    type_text(&mut app, ">");
    app.on_key(key(KeyCode::End));
    app.on_key(key(KeyCode::Backspace));
    assert_eq!(app.input(), ">hell");
    app.on_key(key(KeyCode::Home));
    app.on_key(key(KeyCode::Delete));
    assert_eq!(app.input(), "hell");
    assert_eq!(app.on_key(key(KeyCode::Enter)), vec![req(Request::Say { text: "hell".into() })]);
    assert_eq!(app.input(), "");
    type_text(&mut app, "second");
    app.on_key(key(KeyCode::Enter));
    app.on_key(key(KeyCode::Up));
    assert_eq!(app.input(), "second");
    app.on_key(key(KeyCode::Up));
    assert_eq!(app.input(), "hell");
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.input(), "");
    // A long line scrolls sideways and keeps the end in view.
    type_text(&mut app, &"x".repeat(100));
    type_text(&mut app, "END");
    let screen = draw(&mut app, 40, 6);
    let last = screen.lines().last().unwrap_or("");
    assert!(last.starts_with("public> ") && last.ends_with("END"), "{screen}");
}

#[test]
fn history_fills_panes_without_unread_counts_or_duplicates() {
    let mut app = app();
    let item = |id: &str, dir: &str, peer: &str, nick: &str, text: &str, secs: u64| HistoryItem {
        id: id.into(),
        direction: dir.into(),
        peer_id: peer.into(),
        nick: nick.into(),
        text: text.into(),
        timestamp: T0 + secs * 1000,
    };
    app.on_history(vec![
        item("h1", "public", BOB1, "bob", "old news", 1),
        item("h2", "public", ME, "alice", "my old words", 2),
        item("h3", "private_in", CAROL, "carol", "secret", 3),
        item("h4", "private_out", CAROL, "carol", "reply", 4),
        item("h5", "private_out", CAROL, "carol", "still waiting", 5),
        item("h6", "sideways", CAROL, "carol", "unknown direction", 6),
    ]);
    app.on_outbox(vec![OutboxItem {
        id: "h5".into(),
        to: CAROL.into(),
        text: "still waiting".into(),
        timestamp: T0,
    }]);
    // The same message again from the live stream is not shown twice.
    assert!(app.on_event(public("h1", BOB1, "bob", "old news", 1)).is_empty());
    assert!(app.on_event(private("h3", CAROL, "carol", "secret", 3)).is_empty());
    assert_eq!(app.pane_count(), 2);
    assert_eq!((app.unread(0), app.unread(1)), (0, 0));
    assert_eq!(app.transcript(0), ["12:00:01 <bob> old news", "12:00:02 <alice> my old words"]);
    assert_eq!(
        app.transcript(1),
        ["12:00:03 <carol> secret", "12:00:04 <alice> reply", "12:00:05 <alice> still waiting …"]
    );
    // Showing the pane owes no receipts for messages read in earlier runs.
    assert!(app.on_key(key(KeyCode::Tab)).is_empty());
}

#[allow(clippy::unwrap_used)]
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("yonder-chat-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_shell_runs_its_own_node_and_sees_what_it_says() {
    let dir = temp_dir("embedded");
    let config = dir.join("config.toml");
    // No links at all: nothing on this machine's network can join the test.
    std::fs::write(&config, "[lan]\nenabled = false\n[ble]\nenabled = false\n").unwrap();
    let data = dir.join("data");
    let up = UpArgs {
        nick: Some("tester".into()),
        links: vec![],
        listen: Some("127.0.0.1:0".parse().unwrap()),
        config: Some(config),
        ..UpArgs::default()
    };
    let mut session = Session::attach(&data, &up).unwrap();
    assert!(session.is_embedded());
    let mut app = App::new();
    assert_eq!(session.start(&mut app), Flow::Continue);
    let (id, nick) = app.me();
    assert_eq!((id.len(), nick), (16, "tester"));

    let actions = app.submit("hello mesh");
    assert_eq!(session.execute(&mut app, actions), Flow::Continue);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.transcript(0).iter().any(|l| l.ends_with("<tester> hello mesh")) {
        assert!(Instant::now() < deadline, "no sent event: {:?}", app.transcript(0));
        let more = session.wait(&mut app, Duration::from_millis(100));
        session.execute(&mut app, more);
    }

    // Refusals from the node become lines; they do not end the session.
    let actions = app.submit("/fav nobody");
    assert_eq!(session.execute(&mut app, actions), Flow::Continue);
    let last = app.transcript(0).last().cloned().unwrap_or_default();
    assert!(last.starts_with("! ") && last.contains("nobody"), "{last}");

    // A second chat on the same directory attaches to this node.
    let second = Session::attach(&data, &UpArgs::default()).unwrap();
    assert!(!second.is_embedded());
    second.close().unwrap();

    let actions = app.submit("/quit");
    assert_eq!(session.execute(&mut app, actions), Flow::Quit);
    session.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn room_status(recording: bool) -> serde_json::Value {
    let m = |key: &str, name: Option<&str>, role: &str, muted: bool, speaking: bool, me: bool| {
        json!({"key": key.repeat(16), "name": name, "role": role, "muted": muted,
               "speaking": speaking, "me": me})
    };
    json!({"room": {
        "room": "ab".repeat(16), "title": "Night shift", "host": false, "member": true,
        "gone": false, "seq": 12,
        "members": [
            m("a1a1", Some("ana"), "host", false, true, false),
            m("b2b2", Some("bo"), "speaker", true, false, false),
            m("c3c3", None, "listener", true, false, true),
            m("d4d4", None, "listener", true, false, false),
        ],
        "hands": ["d4d4".repeat(16), "c3c3".repeat(16)],
        "recording": recording, "frames_sealed": 0, "frames_opened": 40,
        "frames_unopened": 0, "control_bad": 0, "playing": false,
        "play_start_unix_ms": null, "recording_to_file": false,
    }})
}

#[test]
fn room_commands_turn_into_requests() {
    let mut app = app();
    let act = |a: &str, m: Option<&str>| {
        req(Request::RoomAct { action: a.into(), member: m.map(str::to_owned), ban: false })
    };
    assert_eq!(app.submit("/room"), vec![req(Request::RoomStatus)]);
    assert_eq!(app.submit("/room list"), vec![req(Request::RoomList)]);
    assert_eq!(
        app.submit("/room incognito ab12"),
        vec![req(Request::RoomJoin { room: "ab12".into(), incognito: true })]
    );
    assert_eq!(app.submit("/room hand"), vec![act("hand", None)]);
    assert_eq!(app.submit("/room invite bo"), vec![act("invite", Some("bo"))]);
    assert_eq!(app.submit("/room mute"), vec![act("mute", None)]);
    assert_eq!(app.submit("/room rec consent"), vec![act("record_consent", None)]);
    assert_eq!(app.submit("/room leave"), vec![req(Request::RoomLeave)]);
    // Missing arguments and unknown subcommands are errors, not requests.
    assert!(app.submit("/room invite").is_empty());
    assert!(app.submit("/room rec maybe").is_empty());
    assert!(app.submit("/room fly").is_empty());
    // A room event refreshes the panel.
    let ev = EventLine::Room {
        room: "ab".repeat(16),
        what: "raise_hand".into(),
        by: None,
        seq: Some(3),
    };
    assert_eq!(app.on_event(ev), vec![req(Request::RoomStatus)]);
    assert!(!app.in_room());
    app.on_reply(&Request::RoomStatus, Ok(room_status(false)));
    assert!(app.in_room());
}

#[test]
fn the_room_panel_shows_stage_speakers_audience_hands_and_rec() {
    let mut app = app();
    app.on_peers(vec![peer(BOB1, "bob")]);
    app.on_reply(&Request::RoomStatus, Ok(room_status(true)));
    let screen = draw(&mut app, 90, 14);
    assert!(screen.contains("● REC"));
    snapshot("room_panel", &screen);
    // Narrow screens have no side panel, but the recording still shows.
    let narrow = draw(&mut app, 60, 8);
    assert!(narrow.contains("● REC"), "{narrow}");
}
