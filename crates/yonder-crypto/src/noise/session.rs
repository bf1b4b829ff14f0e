//! Transport phase: Bitchat's explicit-nonce frames over snow's stateless transport.

use core::fmt;

use snow::StatelessTransportState;
use yonder_wire::PeerId;

use super::{
    FRAME_NONCE_LEN, MAX_TRANSPORT_FRAME, MAX_TRANSPORT_PLAINTEXT, NONCE_LIMIT, ReplayWindow, Role,
    TAG_LEN,
};
use crate::CryptoError;

/// When a session should be replaced by a new handshake.
///
/// The defaults are one hour or 10,000 messages in either direction, Android's
/// per-session values and what Bitchat's design notes state. iOS waits 24 h
/// and 10^9 messages; shorter bounds how much traffic one key exposure
/// reveals, at the cost of one extra 3-message handshake per peer per hour,
/// which is small next to announce traffic. The 2^32 − 1 nonce limit applies
/// whatever the policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyPolicy {
    /// Rekey after this many messages sent, or this many received.
    pub max_messages: u64,
    /// Rekey once the session is this old, in milliseconds.
    pub max_age_ms: u64,
}

impl Default for RekeyPolicy {
    fn default() -> Self {
        RekeyPolicy { max_messages: 10_000, max_age_ms: 60 * 60 * 1000 }
    }
}

/// An established Noise session with one peer.
///
/// Frames are `nonce (u32, big-endian) | ciphertext | tag (16)`. The AEAD nonce
/// is the standard Noise one built from that counter, and the associated data
/// is empty. Received nonces go through a [`ReplayWindow`], updated only after
/// a frame authenticates.
///
/// Size limits: a frame carries at most [`MAX_TRANSPORT_PLAINTEXT`] (65,519)
/// bytes of plaintext, so frames are at most [`MAX_TRANSPORT_FRAME`] (65,539)
/// bytes; that is the Noise message limit, which snow enforces.
pub struct Session {
    transport: StatelessTransportState,
    role: Role,
    remote_static: [u8; 32],
    remote_peer: PeerId,
    handshake_hash: [u8; 32],
    next_nonce: u64,
    received: u64,
    window: ReplayWindow,
    established_at_ms: u64,
    policy: RekeyPolicy,
}

impl Session {
    pub(super) fn new(
        transport: StatelessTransportState,
        role: Role,
        remote_static: [u8; 32],
        remote_peer: PeerId,
        handshake_hash: [u8; 32],
        established_at_ms: u64,
    ) -> Session {
        Session {
            transport,
            role,
            remote_static,
            remote_peer,
            handshake_hash,
            next_nonce: 0,
            received: 0,
            window: ReplayWindow::new(),
            established_at_ms,
            policy: RekeyPolicy::default(),
        }
    }

    /// Encrypts `plaintext` into one frame, using the next send counter.
    ///
    /// Fails with [`CryptoError::RekeyRequired`] once the counter reaches
    /// 2^32 − 1; the session can still decrypt.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if plaintext.len() > MAX_TRANSPORT_PLAINTEXT {
            return Err(CryptoError::PlaintextTooLarge {
                len: plaintext.len(),
                max: MAX_TRANSPORT_PLAINTEXT,
            });
        }
        let nonce = self.next_nonce;
        let Ok(prefix) = u32::try_from(nonce) else {
            return Err(CryptoError::RekeyRequired);
        };
        if nonce >= NONCE_LIMIT {
            return Err(CryptoError::RekeyRequired);
        }
        let mut frame = vec![0u8; FRAME_NONCE_LEN + plaintext.len() + TAG_LEN];
        frame[..FRAME_NONCE_LEN].copy_from_slice(&prefix.to_be_bytes());
        let n = self
            .transport
            .write_message(nonce, plaintext, &mut frame[FRAME_NONCE_LEN..])
            .map_err(|_| CryptoError::Internal("transport encryption failed"))?;
        frame.truncate(FRAME_NONCE_LEN + n);
        self.next_nonce += 1;
        Ok(frame)
    }

    /// Authenticates and decrypts one frame from the peer.
    ///
    /// Rejects frames that are replays, older than the window, reserved
    /// nonces, oversized, truncated or forged; none of these change any state.
    pub fn decrypt(&mut self, frame: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if frame.len() > MAX_TRANSPORT_FRAME {
            return Err(CryptoError::TooLarge {
                what: "transport frame",
                len: frame.len(),
                max: MAX_TRANSPORT_FRAME,
            });
        }
        let (Some(prefix), Some(ciphertext)) =
            (frame.first_chunk::<FRAME_NONCE_LEN>(), frame.get(FRAME_NONCE_LEN..))
        else {
            return Err(truncated(frame.len()));
        };
        if ciphertext.len() < TAG_LEN {
            return Err(truncated(frame.len()));
        }
        let nonce = u64::from(u32::from_be_bytes(*prefix));
        if nonce >= NONCE_LIMIT {
            return Err(CryptoError::ReservedNonce(nonce));
        }
        self.window.check(nonce)?;
        let mut plaintext = vec![0u8; ciphertext.len() - TAG_LEN];
        let n = self
            .transport
            .read_message(nonce, ciphertext, &mut plaintext)
            .map_err(|_| CryptoError::Decrypt)?;
        // Only an authenticated frame may move the window.
        self.window.accept(nonce)?;
        self.received += 1;
        plaintext.truncate(n);
        Ok(plaintext)
    }

    /// Whether the policy says to run a new handshake at `now_ms` (same clock
    /// as the one given to [`super::Handshake::into_session`]).
    pub fn needs_rekey(&self, now_ms: u64) -> bool {
        self.next_nonce >= NONCE_LIMIT
            || self.next_nonce >= self.policy.max_messages
            || self.received >= self.policy.max_messages
            || now_ms.saturating_sub(self.established_at_ms) >= self.policy.max_age_ms
    }

    /// Replaces the rekey policy (the default is [`RekeyPolicy::default`]).
    pub fn set_rekey_policy(&mut self, policy: RekeyPolicy) {
        self.policy = policy;
    }

    /// The rekey policy in force.
    pub fn rekey_policy(&self) -> RekeyPolicy {
        self.policy
    }

    /// The peer's authenticated Noise static public key.
    pub fn remote_static(&self) -> [u8; 32] {
        self.remote_static
    }

    /// The peer's ID, which its static key was checked to derive to.
    pub fn remote_peer_id(&self) -> PeerId {
        self.remote_peer
    }

    /// The Noise handshake hash, unique to this session (for channel binding).
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.handshake_hash
    }

    /// Our role in the handshake that made this session.
    pub fn role(&self) -> Role {
        self.role
    }

    /// When the session was established (as passed to `into_session`).
    pub fn established_at_ms(&self) -> u64 {
        self.established_at_ms
    }

    /// How many frames we have encrypted (the next send counter).
    pub fn messages_sent(&self) -> u64 {
        self.next_nonce
    }

    /// How many frames have authenticated.
    pub fn messages_received(&self) -> u64 {
        self.received
    }

    /// Test hook: moves the send counter, to reach the nonce limit quickly.
    #[cfg(any(test, feature = "test-vectors"))]
    pub fn set_send_counter_for_tests(&mut self, next_nonce: u64) {
        self.next_nonce = next_nonce;
    }
}

fn truncated(have: usize) -> CryptoError {
    CryptoError::Truncated { what: "transport frame", need: FRAME_NONCE_LEN + TAG_LEN, have }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("remote_peer", &self.remote_peer)
            .field("messages_sent", &self.next_nonce)
            .field("messages_received", &self.received)
            .field("newest_received_nonce", &self.window.newest())
            .field("established_at_ms", &self.established_at_ms)
            .finish_non_exhaustive()
    }
}
