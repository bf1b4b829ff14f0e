//! The chat's state and what changes it: events from the node, replies to
//! requests, and keys. Nothing here does IO; what the user asks for comes
//! out as [`Action`]s for the shell to carry out, so all of it can be
//! tested without a node or a terminal.

use std::collections::{BTreeMap, HashSet};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde_json::Value;

use super::command::{self, Command, HELP, ROOM_HELP};
use super::text::{clean, nick_key, str_width, truncate};
use crate::control::{
    EventLine, HistoryItem, IdInfo, OutboxItem, PeerInfo, Request, RoomInfo, RoomStatus,
};
use crate::daemon::resolve::{self, Candidate};

/// How many messages are loaded from the history at start.
pub const HISTORY_LIMIT: usize = 200;

/// What the shell must do for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this request to the node and hand the reply to [`App::on_reply`].
    Request(Request),
    /// Leave.
    Quit,
}

/// How far one of our private messages got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    /// Given up on.
    Failed,
    /// Sent, no receipt yet.
    Pending,
    /// The recipient's device has it.
    Delivered,
    /// The recipient read it.
    Read,
}

impl Mark {
    /// The mark drawn after the message.
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Failed => "✗",
            Mark::Pending => "…",
            Mark::Delivered => "✓",
            Mark::Read => "✓✓",
        }
    }
}

/// One line of a pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    /// A message, ours or a peer's.
    Message {
        id: String,
        time: u64,
        /// Author's peer ID (ours for our messages).
        from: String,
        /// Author's nickname when it was written.
        nick: String,
        text: String,
        /// Delivery state of our private messages.
        mark: Option<Mark>,
    },
    /// Something the client says (command output).
    Note(String),
    /// A peer came or went; named when drawn, so a later namesake adds the suffix.
    PeerNote { peer: String, nick: String, what: &'static str },
    /// Something that went wrong.
    Error(String),
}

/// A conversation: the public timeline, or the private one with a peer.
#[derive(Debug, Clone, Default)]
pub(super) struct Pane {
    /// The peer's ID; `None` for the public timeline.
    pub(super) peer: Option<String>,
    pub(super) entries: Vec<Entry>,
    /// Messages arrived while another pane was shown.
    pub(super) unread: usize,
    /// Rows scrolled up from the bottom.
    pub(super) scroll: usize,
    /// Private messages to send read receipts for once the pane is shown.
    to_ack: Vec<String>,
}

/// The line being typed.
#[derive(Debug, Clone, Default)]
pub(super) struct Input {
    pub(super) chars: Vec<char>,
    pub(super) cursor: usize,
    history: Vec<String>,
    /// Position while going through `history` with Up/Down.
    recalled: Option<usize>,
}

impl Input {
    fn text(&self) -> String {
        self.chars.iter().collect()
    }

    fn set(&mut self, s: &str) {
        self.chars = s.chars().collect();
        self.cursor = self.chars.len();
    }

    fn take(&mut self) -> String {
        let s = self.text();
        self.chars.clear();
        self.cursor = 0;
        self.recalled = None;
        if !s.trim().is_empty() && self.history.last() != Some(&s) {
            self.history.push(s.clone());
        }
        s
    }

    fn older(&mut self) {
        let i = match self.recalled {
            None => self.history.len().checked_sub(1),
            Some(i) => Some(i.saturating_sub(1)),
        };
        if let Some(i) = i
            && let Some(s) = self.history.get(i).cloned()
        {
            self.recalled = Some(i);
            self.set(&s);
        }
    }

    fn newer(&mut self) {
        let Some(i) = self.recalled else { return };
        match self.history.get(i + 1).cloned() {
            Some(s) => {
                self.recalled = Some(i + 1);
                self.set(&s);
            }
            None => {
                self.recalled = None;
                self.set("");
            }
        }
    }
}

/// The chat client's whole state.
#[derive(Debug, Clone)]
pub struct App {
    /// Our peer ID (empty until the node said).
    pub(super) my_id: String,
    /// Our nickname.
    pub(super) my_nick: String,
    /// Every peer seen this run, by peer ID, with its latest nickname.
    pub(super) known: BTreeMap<String, String>,
    /// The peers in reach, as the node last listed them.
    pub(super) peers: Vec<PeerInfo>,
    pub(super) panes: Vec<Pane>,
    pub(super) focus: usize,
    pub(super) input: Input,
    /// Message IDs shown, so history and live events do not show one twice.
    seen: HashSet<String>,
    /// Rows of the message area at the last draw, for paging.
    pub(super) page: usize,
    /// How the client reaches the node, for the status bar.
    pub(super) mode: String,
    /// The room we are in, as the node last described it.
    pub(super) room: Option<RoomStatus>,
}

impl App {
    /// An empty chat with only the public timeline.
    pub fn new() -> App {
        App {
            my_id: String::new(),
            my_nick: String::new(),
            known: BTreeMap::new(),
            peers: Vec::new(),
            panes: vec![Pane::default()],
            focus: 0,
            input: Input::default(),
            seen: HashSet::new(),
            page: 10,
            mode: String::new(),
            room: None,
        }
    }

    /// The requests that fill the screen at start: who we are, the recent
    /// history, what still waits for a receipt, and the peers.
    pub fn startup() -> Vec<Action> {
        [Request::Id, Request::History { limit: HISTORY_LIMIT }, Request::Outbox, Request::Peers]
            .into_iter()
            .map(Action::Request)
            .collect()
    }

    /// Sets the status bar's note on how the node is reached.
    pub fn set_mode(&mut self, mode: &str) {
        self.mode = clean(mode);
    }

    /// Adds an informational line to the current pane.
    pub fn note(&mut self, text: &str) {
        let line = Entry::Note(clean(text));
        self.current().entries.push(line);
    }

    /// Adds an error line to the current pane.
    pub fn error(&mut self, text: &str) {
        let line = Entry::Error(clean(text));
        self.current().entries.push(line);
    }

    /// Takes our identity from the node's `id` answer.
    pub fn on_id(&mut self, id: IdInfo) {
        self.my_id = id.peer_id.to_ascii_lowercase();
        self.my_nick = clean(&id.nick);
        self.known.insert(self.my_id.clone(), self.my_nick.clone());
    }

    /// Takes a fresh peer list (from `peers`).
    pub fn on_peers(&mut self, peers: Vec<PeerInfo>) {
        let mut peers: Vec<PeerInfo> = peers
            .into_iter()
            .map(|mut p| {
                p.peer_id = p.peer_id.to_ascii_lowercase();
                p.nick = clean(&p.nick);
                p
            })
            .collect();
        for p in &peers {
            self.known.insert(p.peer_id.clone(), p.nick.clone());
        }
        peers.sort_by(|a, b| {
            (!a.favourite, nick_key(&a.nick), &a.peer_id).cmp(&(
                !b.favourite,
                nick_key(&b.nick),
                &b.peer_id,
            ))
        });
        self.peers = peers;
    }

    /// Fills the panes from the history (oldest first), as read at start.
    /// These count as already seen: no unread counts, no read receipts.
    pub fn on_history(&mut self, items: Vec<HistoryItem>) {
        for m in items {
            if !self.seen.insert(m.id.clone()) {
                continue;
            }
            let peer = m.peer_id.to_ascii_lowercase();
            let nick = clean(&m.nick);
            let text = clean(&m.text);
            let (pane, from, nick) = match m.direction.as_str() {
                "public" => (0, peer.clone(), nick),
                "private_in" => (self.pane_for(&peer), peer.clone(), nick),
                "private_out" => {
                    self.known.entry(peer.clone()).or_insert(nick);
                    (self.pane_for(&peer), self.my_id.clone(), self.my_nick.clone())
                }
                _ => continue,
            };
            if from != self.my_id {
                self.known.entry(from.clone()).or_insert(nick.clone());
            }
            let entry =
                Entry::Message { id: m.id, time: m.timestamp, from, nick, text, mark: None };
            if let Some(p) = self.panes.get_mut(pane) {
                p.entries.push(entry);
            }
        }
    }

    /// Marks our private messages still waiting for a receipt (from `outbox`).
    pub fn on_outbox(&mut self, items: Vec<OutboxItem>) {
        for item in items {
            self.set_mark(&item.id, Mark::Pending);
        }
    }

    /// Takes one event from the node.
    pub fn on_event(&mut self, event: EventLine) -> Vec<Action> {
        match event {
            EventLine::PublicMessage { id, from, nick, text, timestamp, .. } => {
                if !self.seen.insert(id.clone()) {
                    return Vec::new();
                }
                let from = from.to_ascii_lowercase();
                let nick = clean(&nick);
                self.known.insert(from.clone(), nick.clone());
                let public = &mut self.panes[0];
                public.entries.push(Entry::Message {
                    id,
                    time: timestamp,
                    from,
                    nick,
                    text: clean(&text),
                    mark: None,
                });
                if self.focus != 0 {
                    public.unread += 1;
                }
                Vec::new()
            }
            EventLine::PrivateMessage { id, from, nick, text, timestamp } => {
                if !self.seen.insert(id.clone()) {
                    return Vec::new();
                }
                let from = from.to_ascii_lowercase();
                let nick = clean(&nick);
                self.known.insert(from.clone(), nick.clone());
                let i = self.pane_for(&from);
                let focused = i == self.focus;
                let Some(pane) = self.panes.get_mut(i) else { return Vec::new() };
                pane.entries.push(Entry::Message {
                    id: id.clone(),
                    time: timestamp,
                    from: from.clone(),
                    nick,
                    text: clean(&text),
                    mark: None,
                });
                if focused {
                    vec![Action::Request(Request::Read { peer: from, id })]
                } else {
                    pane.unread += 1;
                    pane.to_ack.push(id);
                    Vec::new()
                }
            }
            EventLine::Sent { id, to, nick, text, timestamp } => {
                if !self.seen.insert(id.clone()) {
                    return Vec::new();
                }
                let nick = clean(&nick);
                if !self.my_id.is_empty() {
                    self.known.insert(self.my_id.clone(), nick.clone());
                }
                self.my_nick = nick.clone();
                let (pane, mark) = match to {
                    Some(to) => (self.pane_for(&to.to_ascii_lowercase()), Some(Mark::Pending)),
                    None => (0, None),
                };
                let entry = Entry::Message {
                    id,
                    time: timestamp,
                    from: self.my_id.clone(),
                    nick,
                    text: clean(&text),
                    mark,
                };
                if let Some(p) = self.panes.get_mut(pane) {
                    p.entries.push(entry);
                }
                Vec::new()
            }
            EventLine::Delivered { id, .. } => {
                self.set_mark(&id, Mark::Delivered);
                Vec::new()
            }
            EventLine::Read { id, .. } => {
                self.set_mark(&id, Mark::Read);
                Vec::new()
            }
            EventLine::SendFailed { id, to, reason } => {
                self.set_mark(&id, Mark::Failed);
                let i = self.pane_for(&to.to_ascii_lowercase());
                if let Some(p) = self.panes.get_mut(i) {
                    p.entries.push(Entry::Error(format!("not delivered: {}", clean(&reason))));
                }
                Vec::new()
            }
            EventLine::PeerUp { peer_id, nick } => {
                self.peer_note(&peer_id, &nick, "joined");
                vec![Action::Request(Request::Peers)]
            }
            EventLine::PeerDown { peer_id, nick } => {
                self.peer_note(&peer_id, &nick, "left");
                vec![Action::Request(Request::Peers)]
            }
            EventLine::Nick { nick } => {
                self.my_nick = clean(&nick);
                if !self.my_id.is_empty() {
                    self.known.insert(self.my_id.clone(), self.my_nick.clone());
                }
                let line = format!("you are now {}", self.my_nick);
                self.note(&line);
                Vec::new()
            }
            EventLine::Lagged { missed } => {
                self.error(&format!("missed {missed} events (this client fell behind)"));
                Vec::new()
            }
            EventLine::Room { what, .. } => {
                let what = clean(&what);
                match what.as_str() {
                    "joined" => self.note("you are in the room"),
                    "removed" => self.error("you were removed from the room"),
                    "ended" => self.note("the room ended"),
                    w if w.starts_with("rejected") => self.error(&format!("room: {w}")),
                    _ => {}
                }
                vec![Action::Request(Request::RoomStatus)]
            }
        }
    }

    /// The events stream ended (the node stopped or the connection broke).
    pub fn on_disconnect(&mut self, why: Option<&str>) {
        let why = why.map(|w| format!(": {w}")).unwrap_or_default();
        self.error(&format!("the node stopped sending events{why}; /quit to leave"));
    }

    /// Takes the node's answer to `req`: the reply object, or the error to show.
    pub fn on_reply(&mut self, req: &Request, reply: Result<Value, String>) -> Vec<Action> {
        let v = match reply {
            Ok(v) => v,
            // A read receipt that cannot go out is not worth interrupting anyone.
            Err(_) if matches!(req, Request::Read { .. }) => return Vec::new(),
            Err(e) => {
                self.error(&e);
                return Vec::new();
            }
        };
        let done = |app: &mut App, what: &str| {
            let id = v.get("peer_id").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
            let name = app.known.get(&id).map(|n| app.name(n, &id)).unwrap_or(id);
            app.note(&format!("{what} {name}"));
            vec![Action::Request(Request::Peers)]
        };
        let parsed = match req {
            Request::Id => serde_json::from_value(v.clone()).map(|id| self.on_id(id)),
            Request::Peers => field(&v, "peers").map(|p| self.on_peers(p)),
            Request::History { .. } => field(&v, "messages").map(|m| self.on_history(m)),
            Request::Outbox => field(&v, "outbox").map(|o| self.on_outbox(o)),
            Request::Block { .. } => return done(self, "blocked"),
            Request::Unblock { .. } => return done(self, "unblocked"),
            Request::Fav { .. } => return done(self, "favourite:"),
            Request::Unfav { .. } => return done(self, "no longer a favourite:"),
            Request::Verify { .. } => return done(self, "verified"),
            Request::RoomStatus => field(&v, "room").map(|r| self.room = r),
            Request::RoomList => field(&v, "rooms").map(|r| self.on_rooms(r)),
            Request::RoomCreate { .. }
            | Request::RoomJoin { .. }
            | Request::RoomLeave
            | Request::RoomAct { .. } => return vec![Action::Request(Request::RoomStatus)],
            _ => Ok(()),
        };
        if let Err(e) = parsed {
            self.error(&format!("the node's answer is not understood: {e}"));
        }
        Vec::new()
    }

    /// Takes a key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let input = &mut self.input;
        match key.code {
            KeyCode::Char('c') if ctrl => return vec![Action::Quit],
            KeyCode::Char(d @ '1'..='9') if alt => {
                let i = (d as usize) - ('1' as usize);
                if i < self.panes.len() {
                    return self.focus_pane(i);
                }
            }
            KeyCode::Char('a') if ctrl => input.cursor = 0,
            KeyCode::Char('e') if ctrl => input.cursor = input.chars.len(),
            KeyCode::Char('u') if ctrl => {
                input.chars.drain(..input.cursor);
                input.cursor = 0;
            }
            KeyCode::Char(c) if !ctrl && !alt && !c.is_control() => {
                input.chars.insert(input.cursor, c);
                input.cursor += 1;
            }
            KeyCode::Backspace if input.cursor > 0 => {
                input.cursor -= 1;
                input.chars.remove(input.cursor);
            }
            KeyCode::Delete if input.cursor < input.chars.len() => {
                input.chars.remove(input.cursor);
            }
            KeyCode::Left => input.cursor = input.cursor.saturating_sub(1),
            KeyCode::Right => input.cursor = (input.cursor + 1).min(input.chars.len()),
            KeyCode::Home => input.cursor = 0,
            KeyCode::End => input.cursor = input.chars.len(),
            KeyCode::Up => input.older(),
            KeyCode::Down => input.newer(),
            KeyCode::Tab => return self.focus_pane((self.focus + 1) % self.panes.len()),
            KeyCode::BackTab => {
                let n = self.panes.len();
                return self.focus_pane((self.focus + n - 1) % n);
            }
            KeyCode::PageUp => {
                let page = self.page.saturating_sub(1).max(1);
                let pane = self.current();
                pane.scroll = pane.scroll.saturating_add(page);
            }
            KeyCode::PageDown => {
                let page = self.page.saturating_sub(1).max(1);
                let pane = self.current();
                pane.scroll = pane.scroll.saturating_sub(page);
            }
            KeyCode::Enter => {
                let line = input.take();
                return self.submit(&line);
            }
            _ => {}
        }
        Vec::new()
    }

    /// Runs one line of input, as Enter does.
    pub fn submit(&mut self, line: &str) -> Vec<Action> {
        match command::parse(line) {
            Ok(Some(cmd)) => self.run(cmd),
            Ok(None) => Vec::new(),
            Err(e) => {
                self.error(&e.to_string());
                Vec::new()
            }
        }
    }

    fn run(&mut self, cmd: Command) -> Vec<Action> {
        let req = |r: Request| vec![Action::Request(r)];
        match cmd {
            Command::Text(text) => match self.current_peer() {
                Some(peer) => req(Request::Msg { peer, text }),
                None => req(Request::Say { text }),
            },
            Command::Msg { peer, text } => match self.resolve(&peer) {
                Ok(id) => {
                    let i = self.pane_for(&id);
                    let mut out = self.focus_pane(i);
                    if !text.is_empty() {
                        out.push(Action::Request(Request::Msg { peer: id, text }));
                    }
                    out
                }
                Err(e) => {
                    self.error(&e);
                    Vec::new()
                }
            },
            Command::Who => {
                self.who();
                Vec::new()
            }
            Command::Block(p) => self.on_peer(p, "/block NICK", |peer| Request::Block { peer }),
            Command::Unblock(p) => {
                self.on_peer(p, "/unblock NICK", |peer| Request::Unblock { peer })
            }
            Command::Fav(p) => self.on_peer(p, "/fav NICK", |peer| Request::Fav { peer }),
            Command::Unfav(p) => self.on_peer(p, "/unfav NICK", |peer| Request::Unfav { peer }),
            Command::Verify { peer, fingerprint } => req(Request::Verify { peer, fingerprint }),
            Command::Clear => {
                let pane = self.current();
                pane.entries.clear();
                pane.scroll = 0;
                Vec::new()
            }
            Command::Nick(name) => req(Request::Nick { name }),
            Command::Room { sub, arg } => self.room_command(&sub, arg),
            Command::Help => {
                self.note("commands:");
                for (usage, what) in HELP {
                    self.note(&format!("  {usage:<17} {what}"));
                }
                self.note("keys: Tab/Shift-Tab or Alt-1..9 switch panes, PgUp/PgDn scroll,");
                self.note("  Up/Down earlier input; //text sends text starting with /");
                self.note("marks: … sent  ✓ delivered  ✓✓ read  ✗ not delivered");
                self.note("peers: ★ favourite  ✔ verified  ⊘ blocked; hops, direct or mesh");
                Vec::new()
            }
            Command::Quit => vec![Action::Quit],
        }
    }

    /// Whether we are in a room (the shell refreshes the panel then).
    pub fn in_room(&self) -> bool {
        self.room.as_ref().is_some_and(|r| !r.gone)
    }

    fn on_rooms(&mut self, rooms: Vec<RoomInfo>) {
        if rooms.is_empty() {
            self.note("no public rooms heard");
        }
        for r in rooms {
            let id = r.room.get(..8).unwrap_or(&r.room).to_owned();
            let (title, host) = (clean(&r.title), clean(&r.host));
            self.note(&format!("room {id}  {title}  (host {host}, {} in it)", r.audience));
        }
    }

    fn room_command(&mut self, sub: &str, arg: String) -> Vec<Action> {
        let act = |action: &str, member: Option<String>| {
            vec![Action::Request(Request::RoomAct {
                action: action.to_owned(),
                member,
                ban: false,
            })]
        };
        let member = (!arg.is_empty()).then(|| arg.clone());
        let need = |app: &mut App, usage: &str| {
            app.error(&format!("usage: {usage}"));
            Vec::new()
        };
        match sub {
            "" | "status" | "show" => vec![Action::Request(Request::RoomStatus)],
            "list" | "ls" => vec![Action::Request(Request::RoomList)],
            "create" if !arg.is_empty() => vec![Action::Request(Request::RoomCreate {
                title: arg,
                description: String::new(),
                topics: Vec::new(),
                scheduled_start_ms: None,
                invite_only: false,
            })],
            "create" => need(self, "/room create TITLE"),
            "join" | "incognito" if !arg.is_empty() => {
                vec![Action::Request(Request::RoomJoin {
                    room: arg,
                    incognito: sub == "incognito",
                })]
            }
            "join" | "incognito" => need(self, "/room join ID"),
            "leave" => vec![Action::Request(Request::RoomLeave)],
            "hand" => act("hand", None),
            "lower" => act("lower", member),
            "accept" | "decline" | "unmute" | "end" => act(sub, None),
            "mute" => act("mute", member),
            "invite" | "cohost" | "uncohost" | "remove" | "unban" | "audience"
                if member.is_some() =>
            {
                act(sub, member)
            }
            "invite" | "cohost" | "uncohost" | "remove" | "unban" => {
                need(self, &format!("/room {sub} MEMBER"))
            }
            "audience" => act("audience", None),
            "rec" if ["request", "consent", "start", "stop"].contains(&arg.as_str()) => {
                act(&format!("record_{arg}"), None)
            }
            "rec" => need(self, "/room rec request|consent|start|stop"),
            "help" => {
                for (usage, what) in ROOM_HELP {
                    self.note(&format!("  {usage:<22} {what}"));
                }
                Vec::new()
            }
            other => {
                self.error(&format!("unknown room command {other} (/room help lists them)"));
                Vec::new()
            }
        }
    }

    /// A request about `peer`, or the current private pane's peer if none was named.
    fn on_peer(
        &mut self,
        peer: Option<String>,
        usage: &str,
        make: impl FnOnce(String) -> Request,
    ) -> Vec<Action> {
        match peer.or_else(|| self.current_peer()) {
            Some(p) => vec![Action::Request(make(p))],
            None => {
                self.error(&format!("usage: {usage} (or use it in a private pane)"));
                Vec::new()
            }
        }
    }

    fn who(&mut self) {
        if self.peers.is_empty() {
            self.note("nobody in reach");
            return;
        }
        let lines: Vec<String> = self
            .peers
            .iter()
            .map(|p| {
                let mut flags = vec![
                    match p.hops {
                        0 => "distance unknown".to_owned(),
                        1 => "1 hop".to_owned(),
                        h => format!("{h} hops"),
                    },
                    if p.direct { "direct" } else { "mesh" }.to_owned(),
                ];
                for (on, what) in
                    [(p.verified, "verified"), (p.favourite, "favourite"), (p.blocked, "blocked")]
                {
                    if on {
                        flags.push(what.to_owned());
                    }
                }
                format!("  {} ({})", self.name(&p.nick, &p.peer_id), flags.join(", "))
            })
            .collect();
        let n = lines.len();
        self.note(&format!("{n} peer{} in reach:", if n == 1 { "" } else { "s" }));
        for l in lines {
            self.note(&l);
        }
    }

    /// Resolves what the user typed for a peer to a peer ID, among the
    /// peers seen this run (the node's own rules: no guessing between equal nicknames).
    fn resolve(&self, query: &str) -> Result<String, String> {
        let candidates: Vec<Candidate> = self
            .known
            .iter()
            .filter(|(id, _)| **id != self.my_id)
            .filter_map(|(id, nick)| {
                let fingerprint = self
                    .peers
                    .iter()
                    .find(|p| p.peer_id == *id)
                    .and_then(|p| hex::decode(&p.fingerprint).ok())
                    .and_then(|f| <[u8; 32]>::try_from(f).ok());
                Some(Candidate { id: id.parse().ok()?, nick: nick.clone(), fingerprint })
            })
            .collect();
        resolve::resolve(query, &candidates).map(|id| id.to_hex()).map_err(|e| match e {
            resolve::ResolveError::NotFound(q) => format!("no known peer matches {q:?} (/who)"),
            e => e.to_string(),
        })
    }

    /// Shows pane `i`, clears its unread count, and sends the read receipts it owes.
    fn focus_pane(&mut self, i: usize) -> Vec<Action> {
        let Some(pane) = self.panes.get_mut(i) else { return Vec::new() };
        self.focus = i;
        pane.unread = 0;
        let Some(peer) = pane.peer.clone() else { return Vec::new() };
        pane.to_ack
            .drain(..)
            .map(|id| Action::Request(Request::Read { peer: peer.clone(), id }))
            .collect()
    }

    fn current(&mut self) -> &mut Pane {
        if self.focus >= self.panes.len() {
            self.focus = 0;
        }
        if self.panes.is_empty() {
            self.panes.push(Pane::default());
        }
        &mut self.panes[self.focus]
    }

    fn current_peer(&self) -> Option<String> {
        self.panes.get(self.focus).and_then(|p| p.peer.clone())
    }

    /// The index of `peer`'s private pane, opened if needed.
    fn pane_for(&mut self, peer: &str) -> usize {
        if let Some(i) = self.panes.iter().position(|p| p.peer.as_deref() == Some(peer)) {
            return i;
        }
        self.panes.push(Pane { peer: Some(peer.to_owned()), ..Pane::default() });
        self.panes.len() - 1
    }

    fn set_mark(&mut self, id: &str, mark: Mark) {
        for pane in self.panes.iter_mut().skip(1) {
            for e in pane.entries.iter_mut().rev() {
                if let Entry::Message { id: mid, mark: m, .. } = e
                    && mid == id
                {
                    // Receipts can arrive out of order: a mark never goes back, a
                    // give-up only replaces "pending", and a late receipt beats a give-up.
                    let newer = match (*m, mark) {
                        (None, _) => true,
                        (Some(old), Mark::Failed) => old == Mark::Pending,
                        (Some(old), new) => old < new,
                    };
                    if newer {
                        *m = Some(mark);
                    }
                    return;
                }
            }
        }
    }

    fn peer_note(&mut self, peer_id: &str, nick: &str, what: &'static str) {
        let id = peer_id.to_ascii_lowercase();
        let nick = clean(nick);
        if !nick.is_empty() {
            self.known.insert(id.clone(), nick.clone());
        }
        let nick = self.known.get(&id).cloned().unwrap_or_default();
        let line = Entry::PeerNote { peer: id.clone(), nick, what };
        self.panes[0].entries.push(line.clone());
        if let Some(p) = self.panes.iter_mut().skip(1).find(|p| p.peer.as_deref() == Some(&*id)) {
            p.entries.push(line);
        }
    }

    /// How a peer is named on screen: its nickname, with `#` and the first
    /// four digits of its peer ID whenever another peer seen this run (or
    /// we) goes by the same nickname.
    pub fn name(&self, nick: &str, peer_id: &str) -> String {
        let key = nick_key(nick);
        let shared = key.is_empty()
            || self.known.iter().any(|(id, n)| id != peer_id && nick_key(n) == key)
            || (peer_id != self.my_id && nick_key(&self.my_nick) == key);
        if shared {
            format!("{nick}#{}", peer_id.get(..4).unwrap_or(peer_id))
        } else {
            nick.to_owned()
        }
    }

    /// [`App::name`] in at most `width` columns: a long nickname is cut,
    /// never the suffix that tells it apart.
    pub fn name_within(&self, nick: &str, peer_id: &str, width: usize) -> String {
        let full = self.name(nick, peer_id);
        if str_width(&full) <= width {
            return full;
        }
        let suffix = full.get(nick.len()..).unwrap_or("");
        let room = width.saturating_sub(str_width(suffix));
        format!("{}{suffix}", truncate(nick, room))
    }

    /// The title of pane `i`: `public` or the peer's name.
    pub fn pane_title(&self, i: usize) -> String {
        match self.panes.get(i).and_then(|p| p.peer.as_deref()) {
            None => "public".to_owned(),
            Some(id) => {
                let nick = self.known.get(id).map(String::as_str).unwrap_or("");
                self.name(nick, id)
            }
        }
    }

    /// Our peer ID and nickname (empty until the node said).
    pub fn me(&self) -> (&str, &str) {
        (&self.my_id, &self.my_nick)
    }

    /// How many panes are open (the public timeline is pane 0).
    pub fn pane_count(&self) -> usize {
        self.panes.len()
    }

    /// The pane shown.
    pub fn focused(&self) -> usize {
        self.focus
    }

    /// Unread messages in pane `i`.
    pub fn unread(&self, i: usize) -> usize {
        self.panes.get(i).map_or(0, |p| p.unread)
    }

    /// The text being typed.
    pub fn input(&self) -> String {
        self.input.text()
    }

    /// Pane `i` as plain text lines (unwrapped), as it is drawn.
    pub fn transcript(&self, i: usize) -> Vec<String> {
        let Some(pane) = self.panes.get(i) else { return Vec::new() };
        pane.entries.iter().map(|e| self.entry_text(e)).collect()
    }

    pub(super) fn entry_text(&self, e: &Entry) -> String {
        match e {
            Entry::Message { time, from, nick, text, mark, .. } => {
                let mark = mark.map(|m| format!(" {}", m.symbol())).unwrap_or_default();
                format!("{} <{}> {text}{mark}", crate::cmds::clock(*time), self.name(nick, from))
            }
            Entry::Note(t) => format!("* {t}"),
            Entry::PeerNote { peer, nick, what } => format!("* {} {what}", self.name(nick, peer)),
            Entry::Error(t) => format!("! {t}"),
        }
    }
}

impl Default for App {
    fn default() -> App {
        App::new()
    }
}

fn field<T: serde::de::DeserializeOwned>(v: &Value, name: &str) -> Result<T, serde_json::Error> {
    serde_json::from_value(v.get(name).cloned().unwrap_or(Value::Null))
}
