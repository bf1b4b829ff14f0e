//! Turning what a user types for a peer (`bob`, `bob#1a2b`, `@bob`, a peer
//! ID, a fingerprint prefix) into a peer ID, and refusing to guess.

use yonder_wire::PeerId;

/// A peer as resolution sees it: ID, nickname, and fingerprint if known.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Peer ID.
    pub id: PeerId,
    /// Nickname.
    pub nick: String,
    /// Fingerprint (SHA-256 of the Noise key), if known.
    pub fingerprint: Option<[u8; 32]>,
}

/// Why a peer could not be named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Nothing matches.
    #[error("no known peer matches {0:?} (see `yonder peers`)")]
    NotFound(String),
    /// Several peers match; the user must say which.
    #[error("{query:?} could be any of {}; name one of them", .choices.join(", "))]
    Ambiguous {
        /// What was typed.
        query: String,
        /// Unambiguous names for the candidates.
        choices: Vec<String>,
    },
}

/// How a peer is shown where nicknames may repeat: `nick#` and the first
/// four hex digits of its peer ID.
pub fn display_name(nick: &str, id: PeerId) -> String {
    format!("{nick}#{}", &id.to_hex()[..4])
}

/// Resolves `query` against the known `peers`. A full 16-digit peer ID is
/// taken as is, known or not (a message to it waits in the outbox).
pub fn resolve(query: &str, peers: &[Candidate]) -> Result<PeerId, ResolveError> {
    let q = query.trim().trim_start_matches('@');
    if q.len() == 16
        && let Ok(id) = q.parse::<PeerId>()
    {
        return Ok(id);
    }
    let pick = |found: Vec<&Candidate>| match found.as_slice() {
        [] => Err(ResolveError::NotFound(query.to_owned())),
        [one] => Ok(one.id),
        many => Err(ResolveError::Ambiguous {
            query: query.to_owned(),
            choices: many.iter().map(|c| display_name(&c.nick, c.id)).collect(),
        }),
    };
    if let Some((nick, suffix)) = q.rsplit_once('#') {
        let suffix = suffix.to_ascii_lowercase();
        return pick(
            peers.iter().filter(|c| c.nick == nick && c.id.to_hex().starts_with(&suffix)).collect(),
        );
    }
    let exact: Vec<&Candidate> = peers.iter().filter(|c| c.nick == q).collect();
    if !exact.is_empty() {
        return pick(exact);
    }
    let folded: Vec<&Candidate> =
        peers.iter().filter(|c| c.nick.to_lowercase() == q.to_lowercase()).collect();
    if !folded.is_empty() {
        return pick(folded);
    }
    let hex: String = q.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    if hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let hex = hex.to_ascii_lowercase();
        return pick(
            peers
                .iter()
                .filter(|c| {
                    c.id.to_hex().starts_with(&hex)
                        || c.fingerprint.is_some_and(|f| hex::encode(f).starts_with(&hex))
                })
                .collect(),
        );
    }
    Err(ResolveError::NotFound(query.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn peers() -> Vec<Candidate> {
        vec![
            Candidate { id: PeerId([0xab; 8]), nick: "bob".into(), fingerprint: Some([0x11; 32]) },
            Candidate { id: PeerId([0xcd; 8]), nick: "bob".into(), fingerprint: Some([0x22; 32]) },
            Candidate { id: PeerId([0x01; 8]), nick: "Carol".into(), fingerprint: None },
        ]
    }

    #[test]
    fn nicknames_ids_and_fingerprints_resolve_and_duplicates_are_never_guessed() {
        let p = peers();
        let err = resolve("bob", &p).unwrap_err();
        assert_eq!(
            err,
            ResolveError::Ambiguous {
                query: "bob".into(),
                choices: vec!["bob#abab".into(), "bob#cdcd".into()]
            }
        );
        assert_eq!(resolve("bob#cd", &p).unwrap(), PeerId([0xcd; 8]));
        assert_eq!(resolve("@bob#ABAB", &p).unwrap(), PeerId([0xab; 8]));
        assert_eq!(resolve("carol", &p).unwrap(), PeerId([0x01; 8]));
        assert_eq!(resolve("2222 2222", &p).unwrap(), PeerId([0xcd; 8]));
        assert_eq!(resolve("0101", &p).unwrap(), PeerId([0x01; 8]));
        assert_eq!(resolve("0909090909090909", &p).unwrap(), PeerId([0x09; 8]));
        assert!(matches!(resolve("dave", &p), Err(ResolveError::NotFound(_))));
        assert!(matches!(resolve("bob#ff", &p), Err(ResolveError::NotFound(_))));
        assert!(matches!(resolve("", &p), Err(ResolveError::NotFound(_))));
    }
}
