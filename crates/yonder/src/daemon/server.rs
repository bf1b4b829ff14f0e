//! The control socket: accepts clients, reads their request lines, passes
//! requests to the node's loop and writes the answers back; `events`
//! connections get the event stream straight from the broadcast.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};
use tracing::{debug, warn};

use super::{Ctl, refusal};
use crate::control::{EventLine, FaultName, MAX_REQUEST_LINE, Request};

/// Most clients connected at once; more are refused.
const MAX_CLIENTS: usize = 64;

/// Binds the socket at `path` (replacing a stale one), owner-only.
pub(super) fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing a stale {}", path.display())),
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))?;
    Ok(listener)
}

pub(super) async fn accept_loop(
    listener: UnixListener,
    ctl: mpsc::Sender<Ctl>,
    events: broadcast::Sender<Arc<str>>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!("control socket: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let line = refusal("too many clients connected", FaultName::Local) + "\n";
            let _ = stream.write_all(line.as_bytes()).await;
            continue;
        };
        let (ctl, events) = (ctl.clone(), events.clone());
        tokio::spawn(async move {
            if let Err(e) = client(stream, ctl, events).await {
                debug!("control client: {e}");
            }
            drop(permit);
        });
    }
}

async fn client(
    stream: UnixStream,
    ctl: mpsc::Sender<Ctl>,
    events: broadcast::Sender<Arc<str>>,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut buf = Vec::new();
        let n = (&mut r).take(MAX_REQUEST_LINE as u64 + 1).read_until(b'\n', &mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() != Some(&b'\n') && n > MAX_REQUEST_LINE {
            let line = refusal("request line too long", FaultName::Local) + "\n";
            w.write_all(line.as_bytes()).await?;
            return Ok(());
        }
        let req: Request = match serde_json::from_slice(&buf) {
            Ok(r) => r,
            Err(e) => {
                let line = refusal(&format!("bad request: {e}"), FaultName::Local) + "\n";
                w.write_all(line.as_bytes()).await?;
                continue;
            }
        };
        if req == Request::Events {
            let rx = events.subscribe();
            w.write_all(b"{\"ok\":true}\n").await?;
            return stream_events(r, w, rx).await;
        }
        let (tx, answer) = oneshot::channel();
        if ctl.send(Ctl { req, reply: tx }).await.is_err() {
            return Ok(());
        }
        // The loop drops the sender only when it stops.
        let Ok(line) = answer.await else { return Ok(()) };
        w.write_all(line.as_bytes()).await?;
        w.write_all(b"\n").await?;
    }
}

async fn stream_events(
    mut r: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut w: tokio::net::unix::OwnedWriteHalf,
    mut rx: broadcast::Receiver<Arc<str>>,
) -> std::io::Result<()> {
    let mut sink = [0u8; 256];
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(line) => {
                    w.write_all(line.as_bytes()).await?;
                    w.write_all(b"\n").await?;
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let line = serde_json::to_string(&EventLine::Lagged { missed })
                        .unwrap_or_default();
                    w.write_all(line.as_bytes()).await?;
                    w.write_all(b"\n").await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            // Anything the client writes now is ignored; EOF ends the stream.
            n = r.read(&mut sink) => if n? == 0 { return Ok(()) },
        }
    }
}
