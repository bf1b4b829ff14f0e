//! The client side of the control protocol ([`crate::control`]): a blocking
//! connection to a running node, used by the one-shot commands and by
//! `yonder chat`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::control::{EventLine, FaultName, Request, socket_path};

/// Why a request to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No node answers on the data directory's socket.
    #[error("no node is running on {dir} (start one with `yonder up`)")]
    NotRunning {
        /// The data directory.
        dir: PathBuf,
        /// What connecting said.
        source: std::io::Error,
    },
    /// The connection broke.
    #[error("lost the connection to the node: {0}")]
    Io(#[from] std::io::Error),
    /// The node closed the connection without answering.
    #[error("the node closed the connection without answering")]
    Closed,
    /// The node's answer was not the protocol (a different version?).
    #[error("the node's answer is not understood: {0}")]
    BadReply(String),
    /// The node refused the request.
    #[error("{error}")]
    Refused {
        /// The node's message.
        error: String,
        /// Whose fault.
        fault: FaultName,
    },
}

/// A connection to a running node.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the node whose data directory is `dir`.
    pub fn connect(dir: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(socket_path(dir))
            .map_err(|source| ClientError::NotRunning { dir: dir.to_owned(), source })?;
        let writer = stream.try_clone()?;
        Ok(Client { reader: BufReader::new(stream), writer })
    }

    /// Sends `req` and returns the node's reply object (with `ok: true`).
    pub fn request(&mut self, req: &Request) -> Result<Value, ClientError> {
        let mut line =
            serde_json::to_string(req).map_err(|e| ClientError::BadReply(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> Result<Value, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::Closed);
        }
        let v: Value =
            serde_json::from_str(&line).map_err(|e| ClientError::BadReply(e.to_string()))?;
        match v.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(v),
            Some(false) => Err(ClientError::Refused {
                error: v.get("error").and_then(Value::as_str).unwrap_or("refused").to_owned(),
                fault: v
                    .get("fault")
                    .cloned()
                    .and_then(|f| serde_json::from_value(f).ok())
                    .unwrap_or(FaultName::Local),
            }),
            None => Err(ClientError::BadReply("no \"ok\" field".into())),
        }
    }

    /// Subscribes to events: the connection becomes a stream of event lines,
    /// each returned raw (as the node wrote it) and parsed.
    pub fn events(mut self) -> Result<Events, ClientError> {
        self.request(&Request::Events)?;
        Ok(Events { reader: self.reader })
    }
}

/// The event stream of a connection after `events`.
#[derive(Debug)]
pub struct Events {
    reader: BufReader<UnixStream>,
}

impl Iterator for Events {
    /// The line as written (without its newline), and the event if this build knows its kind.
    type Item = Result<(String, Option<EventLine>), ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => {
                let line = line.trim_end().to_owned();
                let parsed = serde_json::from_str(&line).ok();
                Some(Ok((line, parsed)))
            }
            Err(e) => Some(Err(e.into())),
        }
    }
}
