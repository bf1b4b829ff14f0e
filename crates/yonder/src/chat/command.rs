//! The input line's language: plain text, or Bitchat's slash commands.

/// What one line of input asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Text for the current pane: public there, private in a peer's pane.
    Text(String),
    /// `/msg NICK [TEXT]` or `/m`: opens (or goes to) NICK's pane and sends TEXT if any.
    Msg {
        /// Whom, as typed.
        peer: String,
        /// The text; empty to only open the pane.
        text: String,
    },
    /// `/who` or `/w`: lists the peers in the current pane.
    Who,
    /// `/block [NICK]`: without NICK, the peer of the current private pane.
    Block(Option<String>),
    /// `/unblock [NICK]`.
    Unblock(Option<String>),
    /// `/fav [NICK]`.
    Fav(Option<String>),
    /// `/unfav [NICK]`.
    Unfav(Option<String>),
    /// `/verify NICK FINGERPRINT`.
    Verify {
        /// Whom.
        peer: String,
        /// The fingerprint as the peer showed it (spaces allowed).
        fingerprint: String,
    },
    /// `/clear`: empties the current pane.
    Clear,
    /// `/nick NAME`.
    Nick(String),
    /// `/room [SUB [ARG]]`: audio rooms (see [`ROOM_HELP`]); no SUB shows the room.
    Room {
        /// Subcommand, lower case; empty for the room's status.
        sub: String,
        /// The rest of the line.
        arg: String,
    },
    /// `/help`.
    Help,
    /// `/quit`.
    Quit,
}

/// A line that is not a command this client knows, or lacks an argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No such command.
    #[error("unknown command {0} (/help lists them)")]
    Unknown(String),
    /// A required argument is missing.
    #[error("usage: {0}")]
    Usage(&'static str),
}

/// The commands and what they do, as `/help` shows them.
pub const HELP: &[(&str, &str)] = &[
    ("/msg NICK [TEXT]", "private pane with NICK, sending TEXT (also /m)"),
    ("/who", "list the peers in reach (also /w)"),
    ("/block [NICK]", "hide NICK's messages (default: this pane's peer)"),
    ("/unblock [NICK]", "undo /block"),
    ("/fav [NICK]", "mark NICK as a favourite"),
    ("/unfav [NICK]", "undo /fav"),
    ("/verify NICK FP", "mark NICK verified after comparing fingerprints"),
    ("/nick NAME", "change your nickname"),
    ("/clear", "clear this pane"),
    ("/room [SUB]", "audio rooms: /room help lists them"),
    ("/help", "this list"),
    ("/quit", "leave (also Ctrl-C)"),
];

/// The `/room` subcommands.
pub const ROOM_HELP: &[(&str, &str)] = &[
    ("/room", "show the room panel (stage, audience, hands, REC)"),
    ("/room list", "public rooms heard on the mesh"),
    ("/room create TITLE", "host a public room"),
    ("/room join ID", "join a room by ID prefix or title"),
    ("/room incognito ID", "join under no display name"),
    ("/room leave", "leave (the host ends the room)"),
    ("/room hand | lower", "raise or lower your hand"),
    ("/room invite MEMBER", "invite a listener to speak (hosts)"),
    ("/room accept | decline", "answer an invitation to speak"),
    ("/room mute [MEMBER]", "mute yourself, or a speaker (hosts)"),
    ("/room unmute", "unmute yourself"),
    ("/room cohost MEMBER", "appoint a co-host (the host)"),
    ("/room remove MEMBER", "remove a member (hosts)"),
    ("/room end", "end the room (the host)"),
    ("/room rec STEP", "recording: request, consent, start, stop"),
];

/// Reads one line of input; `None` for a blank line. A line starting with
/// `//` is text starting with `/`.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    if let Some(rest) = line.strip_prefix("//") {
        return Ok(Some(Command::Text(format!("/{rest}"))));
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Some(Command::Text(line.to_owned())));
    };
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (rest, ""),
    };
    let (first, tail) = match args.split_once(char::is_whitespace) {
        Some((f, t)) => (f, t.trim()),
        None => (args, ""),
    };
    let opt = || (!first.is_empty()).then(|| first.to_owned());
    let cmd = match name.to_ascii_lowercase().as_str() {
        "msg" | "m" => {
            if first.is_empty() {
                return Err(ParseError::Usage("/msg NICK [TEXT]"));
            }
            Command::Msg { peer: first.to_owned(), text: tail.to_owned() }
        }
        "who" | "w" => Command::Who,
        "block" => Command::Block(opt()),
        "unblock" => Command::Unblock(opt()),
        "fav" => Command::Fav(opt()),
        "unfav" => Command::Unfav(opt()),
        "verify" => {
            if first.is_empty() || tail.is_empty() {
                return Err(ParseError::Usage("/verify NICK FINGERPRINT"));
            }
            Command::Verify { peer: first.to_owned(), fingerprint: tail.replace(' ', "") }
        }
        "clear" => Command::Clear,
        "nick" => {
            if args.is_empty() {
                return Err(ParseError::Usage("/nick NAME"));
            }
            Command::Nick(args.to_owned())
        }
        "room" | "r" => Command::Room { sub: first.to_ascii_lowercase(), arg: tail.to_owned() },
        "help" | "h" | "?" => Command::Help,
        "quit" | "q" | "exit" => Command::Quit,
        _ => return Err(ParseError::Unknown(format!("/{name}"))),
    };
    Ok(Some(cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_text_are_told_apart() {
        assert_eq!(parse("  "), Ok(None));
        assert_eq!(parse(" hi there "), Ok(Some(Command::Text("hi there".into()))));
        assert_eq!(parse("//shrug"), Ok(Some(Command::Text("/shrug".into()))));
        assert_eq!(
            parse("/m bob hi  there"),
            Ok(Some(Command::Msg { peer: "bob".into(), text: "hi  there".into() }))
        );
        assert_eq!(
            parse("/MSG bob#1a2b"),
            Ok(Some(Command::Msg { peer: "bob#1a2b".into(), text: String::new() }))
        );
        assert_eq!(parse("/msg"), Err(ParseError::Usage("/msg NICK [TEXT]")));
        assert_eq!(parse("/block"), Ok(Some(Command::Block(None))));
        assert_eq!(parse("/fav carol"), Ok(Some(Command::Fav(Some("carol".into())))));
        assert_eq!(parse("/w"), Ok(Some(Command::Who)));
        assert_eq!(parse("/nick  new name "), Ok(Some(Command::Nick("new name".into()))));
        assert_eq!(parse("/nick"), Err(ParseError::Usage("/nick NAME")));
        assert_eq!(
            parse("/verify bob 0a0b 0c0d"),
            Ok(Some(Command::Verify { peer: "bob".into(), fingerprint: "0a0b0c0d".into() }))
        );
        assert_eq!(parse("/frobnicate x"), Err(ParseError::Unknown("/frobnicate".into())));
        assert_eq!(parse("/quit"), Ok(Some(Command::Quit)));
        assert_eq!(
            parse("/room JOIN 1a2b night"),
            Ok(Some(Command::Room { sub: "join".into(), arg: "1a2b night".into() }))
        );
        assert_eq!(
            parse("/room"),
            Ok(Some(Command::Room { sub: String::new(), arg: String::new() }))
        );
    }
}
