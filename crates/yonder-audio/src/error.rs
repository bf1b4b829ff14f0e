//! The one error type of the audio layer.

use thiserror::Error;

pub use yonder_wire::Fault;

/// Errors from the codec, the voice-frame format, WAV files and sound devices.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AudioError {
    /// libopus refused an operation (a bad setting or a corrupt packet).
    #[error("opus {what}: {source}")]
    Opus {
        /// What we asked libopus to do.
        what: &'static str,
        /// The libopus error.
        source: audiopus::Error,
    },
    /// libopus could not decode a packet a peer sent.
    #[error("corrupt opus packet: {0}")]
    CorruptOpus(audiopus::Error),
    /// A PCM buffer does not hold exactly one frame.
    #[error("expected {want} samples per frame, got {got}")]
    FrameSize {
        /// Samples the frame needs.
        want: usize,
        /// Samples given.
        got: usize,
    },
    /// Reading or writing a WAV file failed.
    #[error("WAV file: {0}")]
    Wav(#[from] hound::Error),
    /// A WAV file is not 16 kHz mono 16-bit PCM; resampling is not done here.
    #[error(
        "WAV file is {rate} Hz, {channels} channel(s), {bits}-bit; need 16000 Hz mono 16-bit PCM (convert with e.g. `sox IN -r 16000 -c 1 -b 16 OUT.wav`)"
    )]
    UnsupportedWav {
        /// Sample rate of the file.
        rate: u32,
        /// Channels in the file.
        channels: u16,
        /// Bits per sample.
        bits: u16,
    },
    /// The input ended before a field was complete.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// A field has a value the format does not allow.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// The field being read.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The voice-frame version is not one we speak.
    #[error("unsupported voice frame version {0}")]
    UnsupportedVersion(u8),
    /// We were asked to encode something the format cannot carry.
    #[error("cannot encode {what}: {why}")]
    Unencodable {
        /// The field being written.
        what: &'static str,
        /// Why it does not fit.
        why: &'static str,
    },
    /// No sound device of that direction (and name, if one was given) exists
    /// on this machine.
    #[error("{}", no_device_message(direction, name.as_deref()))]
    NoDevice {
        /// `"input"` or `"output"`.
        direction: &'static str,
        /// The name asked for; `None` for the system default.
        name: Option<String>,
    },
    /// A sound device was found but could not be queried, opened or started.
    #[error("sound device {what}: {why}")]
    Device {
        /// The device and what we asked of it.
        what: String,
        /// The audio system's reason.
        why: String,
    },
}

fn no_device_message(direction: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("no {direction} sound device named {name:?}"),
        None => format!("no default {direction} sound device"),
    }
}

impl AudioError {
    /// Whose fault this error is.
    pub fn fault(&self) -> Fault {
        match self {
            AudioError::Truncated { .. }
            | AudioError::Malformed { .. }
            | AudioError::CorruptOpus(_) => Fault::Peer,
            AudioError::UnsupportedVersion(_) => Fault::Incompatible,
            AudioError::Opus { .. }
            | AudioError::FrameSize { .. }
            | AudioError::Wav(_)
            | AudioError::UnsupportedWav { .. }
            | AudioError::Unencodable { .. }
            | AudioError::NoDevice { .. }
            | AudioError::Device { .. } => Fault::Local,
        }
    }

    pub(crate) fn opus(what: &'static str) -> impl FnOnce(audiopus::Error) -> Self {
        move |source| AudioError::Opus { what, source }
    }
}
