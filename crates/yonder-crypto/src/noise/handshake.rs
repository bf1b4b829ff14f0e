//! The XX handshake, bound to a peer ID from the start.

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use snow::HandshakeState;
use yonder_wire::PeerId;
use zeroize::Zeroizing;

use super::resolver::Resolver;
use super::{MAX_HANDSHAKE_MESSAGE, PROTOCOL_NAME, Role, Session};
use crate::CryptoError;
use crate::identity::{Identity, peer_id_from_noise_key};

/// One side of a Noise XX handshake.
///
/// The remote peer ID is fixed at construction: the one we meant to reach
/// (initiator) or the sender ID of the packet that started it (responder).
/// When the remote static key arrives (message 2 for the initiator, message 3
/// for the responder) it must hash to that ID, or the handshake fails with
/// [`CryptoError::PeerMismatch`] before we send anything else.
///
/// Errors while processing a peer's message (authentication, malformed
/// content, wrong peer) leave the handshake failed for good; start a new one.
/// Rejections before processing (oversized input, not our turn) change nothing.
pub struct Handshake {
    // `None` once the handshake has failed.
    state: Option<HandshakeState>,
    role: Role,
    local: PeerId,
    remote: PeerId,
}

impl Handshake {
    /// Starts a handshake towards `expected_peer`; call [`Handshake::write_message`] next.
    ///
    /// `rng` supplies the ephemeral key.
    pub fn initiator(
        identity: &Identity,
        expected_peer: PeerId,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Handshake, CryptoError> {
        Handshake::build(identity, expected_peer, Role::Initiator, &[], draw_seed(rng)?)
    }

    /// Prepares to answer a handshake from `claimed_peer`, the sender ID of the
    /// packet carrying message 1; call [`Handshake::read_message`] with it next.
    ///
    /// `rng` supplies the ephemeral key.
    pub fn responder(
        identity: &Identity,
        claimed_peer: PeerId,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Handshake, CryptoError> {
        Handshake::build(identity, claimed_peer, Role::Responder, &[], draw_seed(rng)?)
    }

    /// Test-vector initiator: a `prologue` and a fixed ephemeral secret.
    /// Never for production: a fixed ephemeral key destroys forward secrecy.
    #[cfg(any(test, feature = "test-vectors"))]
    pub fn initiator_for_vectors(
        identity: &Identity,
        expected_peer: PeerId,
        prologue: &[u8],
        ephemeral_secret: [u8; 32],
    ) -> Result<Handshake, CryptoError> {
        let seed = Zeroizing::new(ephemeral_secret);
        Handshake::build(identity, expected_peer, Role::Initiator, prologue, seed)
    }

    /// Test-vector responder: a `prologue` and a fixed ephemeral secret.
    /// Never for production: a fixed ephemeral key destroys forward secrecy.
    #[cfg(any(test, feature = "test-vectors"))]
    pub fn responder_for_vectors(
        identity: &Identity,
        claimed_peer: PeerId,
        prologue: &[u8],
        ephemeral_secret: [u8; 32],
    ) -> Result<Handshake, CryptoError> {
        let seed = Zeroizing::new(ephemeral_secret);
        Handshake::build(identity, claimed_peer, Role::Responder, prologue, seed)
    }

    fn build(
        identity: &Identity,
        remote: PeerId,
        role: Role,
        prologue: &[u8],
        ephemeral_seed: Zeroizing<[u8; 32]>,
    ) -> Result<Handshake, CryptoError> {
        let local = identity.peer_id();
        if remote == local {
            return Err(CryptoError::HandshakeState("remote peer ID is our own"));
        }
        let params =
            PROTOCOL_NAME.parse().map_err(|_| CryptoError::Internal("protocol name rejected"))?;
        let builder = snow::Builder::with_resolver(params, Box::new(Resolver::new(ephemeral_seed)))
            .local_private_key(identity.noise_secret())
            .and_then(|b| b.prologue(prologue))
            .map_err(|_| CryptoError::Internal("builder rejected parameters"))?;
        let state = match role {
            Role::Initiator => builder.build_initiator(),
            Role::Responder => builder.build_responder(),
        }
        .map_err(|_| CryptoError::Internal("handshake state could not be built"))?;
        Ok(Handshake { state: Some(state), role, local, remote })
    }

    /// Produces our next handshake message (32 or 96 or 64 bytes for Bitchat).
    pub fn write_message(&mut self) -> Result<Vec<u8>, CryptoError> {
        self.write(&[])
    }

    /// [`Handshake::write_message`] carrying a payload. Bitchat handshake
    /// payloads are always empty; yonder's room channels send a join request
    /// in message 3, where it is encrypted and the sender authenticated.
    pub fn write_message_with_payload(&mut self, payload: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.write(payload)
    }

    fn write(&mut self, payload: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let state = self.live_state()?;
        if state.is_handshake_finished() {
            return Err(CryptoError::HandshakeState("handshake already finished"));
        }
        if !state.is_my_turn() {
            return Err(CryptoError::HandshakeState("not our turn to write"));
        }
        let mut out = vec![0u8; MAX_HANDSHAKE_MESSAGE];
        match state.write_message(payload, &mut out) {
            Ok(n) => {
                out.truncate(n);
                Ok(out)
            }
            // Our payload does not fit in one handshake message.
            Err(snow::Error::Input) => Err(CryptoError::PlaintextTooLarge {
                len: payload.len(),
                max: MAX_HANDSHAKE_MESSAGE,
            }),
            // The peer's ephemeral key from its last message has low order;
            // this only shows when we run the DH, so the handshake is over.
            Err(snow::Error::Dh) => {
                self.state = None;
                Err(CryptoError::LowOrderPublicKey)
            }
            Err(_) => Err(CryptoError::Internal("handshake write failed")),
        }
    }

    /// Processes the peer's next handshake message and returns its payload
    /// (always empty from Bitchat peers).
    ///
    /// Once the message reveals the remote static key, checks that it hashes
    /// to the bound peer ID.
    pub fn read_message(&mut self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if msg.len() > MAX_HANDSHAKE_MESSAGE {
            return Err(CryptoError::TooLarge {
                what: "handshake message",
                len: msg.len(),
                max: MAX_HANDSHAKE_MESSAGE,
            });
        }
        let state = self.live_state()?;
        if state.is_handshake_finished() {
            return Err(CryptoError::HandshakeState("handshake already finished"));
        }
        if state.is_my_turn() {
            return Err(CryptoError::HandshakeState("not our turn to read"));
        }
        let mut payload = vec![0u8; msg.len()];
        let result = state.read_message(msg, &mut payload).map_err(map_read_error);
        let result = result.and_then(|n| {
            self.check_binding()?;
            payload.truncate(n);
            Ok(payload)
        });
        if result.is_err() {
            self.state = None;
        }
        result
    }

    /// Whether all three messages have been exchanged.
    pub fn is_finished(&self) -> bool {
        self.state.as_ref().is_some_and(HandshakeState::is_handshake_finished)
    }

    /// Whether the next step is ours to write (false once finished or failed).
    pub fn is_my_turn(&self) -> bool {
        self.state.as_ref().is_some_and(|s| !s.is_handshake_finished() && s.is_my_turn())
    }

    /// Whether an earlier error has ended this handshake.
    pub fn has_failed(&self) -> bool {
        self.state.is_none()
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer ID the remote static key must derive to.
    pub fn remote_peer_id(&self) -> PeerId {
        self.remote
    }

    /// Turns a finished handshake into a transport session established at
    /// `now_ms` (any monotonic millisecond clock; used only for rekey age).
    pub fn into_session(self, now_ms: u64) -> Result<Session, CryptoError> {
        let remote_static = self.check_binding()?.ok_or(CryptoError::HandshakeState(
            "handshake not finished: remote static key unknown",
        ))?;
        let Some(state) = self.state else {
            return Err(CryptoError::HandshakeState("handshake has failed"));
        };
        if !state.is_handshake_finished() {
            return Err(CryptoError::HandshakeState("handshake not finished"));
        }
        let handshake_hash: [u8; 32] = state
            .get_handshake_hash()
            .try_into()
            .map_err(|_| CryptoError::Internal("handshake hash length"))?;
        let transport = state
            .into_stateless_transport_mode()
            .map_err(|_| CryptoError::Internal("transport mode unavailable"))?;
        Ok(Session::new(transport, self.role, remote_static, self.remote, handshake_hash, now_ms))
    }

    fn live_state(&mut self) -> Result<&mut HandshakeState, CryptoError> {
        self.state.as_mut().ok_or(CryptoError::HandshakeState("handshake has failed"))
    }

    /// Checks the remote static key, if known, against the bound peer ID and
    /// returns it.
    fn check_binding(&self) -> Result<Option<[u8; 32]>, CryptoError> {
        let Some(state) = &self.state else {
            return Err(CryptoError::HandshakeState("handshake has failed"));
        };
        let Some(rs) = state.get_remote_static() else {
            return Ok(None);
        };
        let rs: [u8; 32] =
            rs.try_into().map_err(|_| CryptoError::Internal("remote static key length"))?;
        let actual = peer_id_from_noise_key(&rs);
        if actual != self.remote {
            return Err(CryptoError::PeerMismatch { claimed: self.remote, actual });
        }
        Ok(Some(rs))
    }
}

fn draw_seed(rng: &mut (impl RngCore + CryptoRng)) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rng.try_fill_bytes(&mut seed[..]).map_err(|_| CryptoError::Rng)?;
    Ok(seed)
}

fn map_read_error(e: snow::Error) -> CryptoError {
    match e {
        snow::Error::Decrypt => CryptoError::HandshakeRejected("authentication failed"),
        snow::Error::Input => CryptoError::HandshakeRejected("malformed message"),
        snow::Error::Dh => CryptoError::LowOrderPublicKey,
        _ => CryptoError::Internal("handshake read failed"),
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("finished", &self.is_finished())
            .field("failed", &self.has_failed())
            .finish_non_exhaustive()
    }
}
