//! The chat's connection to its node, without a terminal: two control
//! connections (one for requests, one streaming events through a reader
//! thread), and a node of its own on a thread when none runs in the data
//! directory.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use super::app::{Action, App};
use crate::client::{Client, ClientError};
use crate::control::{EventLine, Request};
use crate::daemon::{self, config::UpArgs};

/// How often the peer list is asked for again.
pub const PEERS_EVERY: Duration = Duration::from_secs(2);
/// How often the room panel is refreshed while in a room.
pub const ROOM_EVERY: Duration = Duration::from_millis(500);

/// What the event reader thread passes on.
#[derive(Debug)]
enum Incoming {
    Event(EventLine),
    /// The stream ended, with the error if it broke.
    Ended(Option<String>),
}

/// Whether to go on after a batch of actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep running.
    Continue,
    /// The user asked to leave.
    Quit,
}

/// A chat's link to a node.
#[derive(Debug)]
pub struct Session {
    client: Client,
    events: Receiver<Incoming>,
    /// The node this chat started itself, stopped when the session closes.
    node: Option<daemon::Background>,
    /// False once the request connection broke: requests are then not tried.
    connected: bool,
    /// False once the event stream ended (reported once).
    streaming: bool,
    last_peers: Instant,
    last_room: Instant,
}

impl Session {
    /// Attaches to the node running in `data_dir`, or, if none runs there,
    /// starts one on a thread of this process with `up`'s settings and
    /// attaches to that through its socket like any client.
    pub fn attach(data_dir: &Path, up: &UpArgs) -> anyhow::Result<Session> {
        match Session::connect(data_dir) {
            Ok(s) => Ok(s),
            Err(ClientError::NotRunning { .. }) => {
                let opts = daemon::Options::resolve(Some(data_dir), up)?;
                let node = daemon::Background::start(opts)?;
                let mut s = Session::connect(node.data_dir())?;
                s.node = Some(node);
                Ok(s)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Attaches to the node running in `data_dir`; never starts one.
    pub fn connect(data_dir: &Path) -> Result<Session, ClientError> {
        let client = Client::connect(data_dir)?;
        // Subscribed before the history is read, so nothing falls between
        // the two; the app drops what it sees twice.
        let stream = Client::connect(data_dir)?.events()?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("yonder-chat-events".into()).spawn(move || {
            for item in stream {
                let msg = match item {
                    Ok((_, Some(e))) => Incoming::Event(e),
                    // Kinds this build does not know are skipped.
                    Ok((_, None)) => continue,
                    Err(e) => {
                        let _ = tx.send(Incoming::Ended(Some(e.to_string())));
                        return;
                    }
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
            let _ = tx.send(Incoming::Ended(None));
        })?;
        Ok(Session {
            client,
            events: rx,
            node: None,
            connected: true,
            streaming: true,
            last_peers: Instant::now(),
            last_room: Instant::now(),
        })
    }

    /// Whether the node runs inside this process.
    pub fn is_embedded(&self) -> bool {
        self.node.is_some()
    }

    /// Fills `app` with the node's identity, history, outbox and peers.
    pub fn start(&mut self, app: &mut App) -> Flow {
        app.set_mode(if self.is_embedded() { "own node" } else { "attached" });
        self.execute(app, App::startup())
    }

    /// Hands the events that arrived since the last call to `app`; returns
    /// what it asks for in response.
    pub fn drain(&mut self, app: &mut App) -> Vec<Action> {
        let mut out = Vec::new();
        while self.streaming {
            match self.events.try_recv() {
                Ok(Incoming::Event(e)) => out.extend(app.on_event(e)),
                Ok(Incoming::Ended(why)) => {
                    self.streaming = false;
                    app.on_disconnect(why.as_deref());
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.streaming = false;
                    app.on_disconnect(None);
                }
            }
        }
        out
    }

    /// Waits up to `timeout` for an event, then drains like [`Session::drain`].
    pub fn wait(&mut self, app: &mut App, timeout: Duration) -> Vec<Action> {
        if !self.streaming {
            return Vec::new();
        }
        let mut out = match self.events.recv_timeout(timeout) {
            Ok(Incoming::Event(e)) => app.on_event(e),
            Ok(Incoming::Ended(why)) => {
                self.streaming = false;
                app.on_disconnect(why.as_deref());
                Vec::new()
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.streaming = false;
                app.on_disconnect(None);
                Vec::new()
            }
        };
        out.extend(self.drain(app));
        out
    }

    /// The periodic work due now: the peer list every [`PEERS_EVERY`], and
    /// the room panel every [`ROOM_EVERY`] while in a room (who is
    /// speaking changes without events).
    pub fn tick(&mut self, app: &App) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.connected {
            return out;
        }
        if self.last_peers.elapsed() >= PEERS_EVERY {
            self.last_peers = Instant::now();
            out.push(Action::Request(Request::Peers));
        }
        if app.in_room() && self.last_room.elapsed() >= ROOM_EVERY {
            self.last_room = Instant::now();
            out.push(Action::Request(Request::RoomStatus));
        }
        out
    }

    /// Carries out `actions`, and what the replies lead to, in order.
    pub fn execute(&mut self, app: &mut App, actions: Vec<Action>) -> Flow {
        let mut queue: VecDeque<Action> = actions.into();
        let mut listed = false;
        while let Some(action) = queue.pop_front() {
            let req = match action {
                Action::Quit => return Flow::Quit,
                Action::Request(req) => req,
            };
            if req == Request::Peers {
                // Several joins in one batch need one fresh list, not several.
                if listed {
                    continue;
                }
                listed = true;
                self.last_peers = Instant::now();
            }
            let reply = self.request(&req);
            queue.extend(app.on_reply(&req, reply));
        }
        Flow::Continue
    }

    fn request(&mut self, req: &Request) -> Result<serde_json::Value, String> {
        if !self.connected {
            return Err("not connected to the node; /quit to leave".into());
        }
        match self.client.request(req) {
            Ok(v) => Ok(v),
            Err(ClientError::Refused { error, .. }) => Err(error),
            Err(e) => {
                self.connected = false;
                Err(e.to_string())
            }
        }
    }

    /// Ends the session; stops the node if this chat started it.
    pub fn close(self) -> anyhow::Result<()> {
        let Session { client, node, .. } = self;
        drop(client);
        match node {
            Some(n) => n.stop(),
            None => Ok(()),
        }
    }
}
