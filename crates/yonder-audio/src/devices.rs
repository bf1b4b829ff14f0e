//! Real sound devices through cpal (the `devices` feature): capture from a
//! microphone and playback to a speaker, as 20 ms frames of 16 kHz mono.
//!
//! A device is opened at its own default configuration, since few run at
//! 16 kHz: captured audio is mixed down to mono and resampled to 16 kHz;
//! played audio is resampled to the device's rate and copied to each of its
//! channels. Resampling runs on the caller's thread, never in the device
//! callback, which only copies samples and so cannot block: it takes the
//! queue's lock with `try_lock` and, if the caller holds it, drops (capture)
//! or plays silence (playback) for that one callback.
//!
//! Every queue is bounded at [`MAX_QUEUED_MS`]: when the consumer falls
//! behind, the oldest audio is dropped and counted ([`DeviceStats`]), so
//! latency cannot grow without limit.
//!
//! [`Capture`] and [`Playback`] are `Send` (cpal's streams are).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{ErrorKind, FromSample, Sample, SampleFormat, SizedSample};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::codec::{FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE};
use crate::error::AudioError;

/// The most audio queued in any buffer between a device and its user.
pub const MAX_QUEUED_MS: u32 = 200;

/// The sound devices of the default audio host, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Devices {
    /// Devices that can capture.
    pub inputs: Vec<String>,
    /// Devices that can play.
    pub outputs: Vec<String>,
}

/// Counters of a device's audio path since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Milliseconds of audio dropped because a queue was full (the consumer
    /// fell behind) or the device callback found the queue busy.
    pub dropped_ms: u64,
    /// Milliseconds of silence played because no audio was queued (playback
    /// only).
    pub underrun_ms: u64,
    /// Errors the audio system reported on the running stream, and chunks the
    /// resampler refused.
    pub errors: u64,
}

/// Lists the input and output devices of the default audio host.
///
/// A machine without sound hardware yields empty lists or an error, never a
/// panic.
pub fn list() -> Result<Devices, AudioError> {
    let host = cpal::default_host();
    let inputs = host
        .input_devices()
        .map_err(device_error("list inputs".to_owned()))?
        .filter_map(|d| device_name(&d))
        .collect();
    let outputs = host
        .output_devices()
        .map_err(device_error("list outputs".to_owned()))?
        .filter_map(|d| device_name(&d))
        .collect();
    Ok(Devices { inputs, outputs })
}

/// Audio captured from an input device, read as 16 kHz mono frames.
pub struct Capture {
    /// Keeps the device running; dropping it stops the callback.
    _stream: cpal::Stream,
    shared: Arc<Shared>,
    /// Device-rate mono samples taken from the shared queue.
    scratch: Vec<f32>,
    converter: Converter,
    /// 16 kHz mono samples not yet read as a frame.
    out: Ring,
}

impl Capture {
    /// Opens the input device called `name` (as [`list`] reports it, or its
    /// audio-system ID), or the default input with `None`, and starts
    /// capturing.
    pub fn open(name: Option<&str>) -> Result<Capture, AudioError> {
        let host = cpal::default_host();
        let device = find_device(&host, Direction::Input, name)?;
        let label = label(Direction::Input, name, &device);
        let config =
            device.default_input_config().map_err(config_error(Direction::Input, name, &label))?;
        let rate = config.sample_rate();
        let channels = usize::from(config.channels()).max(1);
        // Built before the stream so a refused rate opens nothing.
        let converter = Converter::new(rate, SAMPLE_RATE)?;
        let shared = Arc::new(Shared::new(rate));
        let stream = match config.sample_format() {
            SampleFormat::I8 => build_input::<i8>(&device, &config, channels, &shared),
            SampleFormat::I16 => build_input::<i16>(&device, &config, channels, &shared),
            SampleFormat::I32 => build_input::<i32>(&device, &config, channels, &shared),
            SampleFormat::U8 => build_input::<u8>(&device, &config, channels, &shared),
            SampleFormat::U16 => build_input::<u16>(&device, &config, channels, &shared),
            SampleFormat::U32 => build_input::<u32>(&device, &config, channels, &shared),
            SampleFormat::F32 => build_input::<f32>(&device, &config, channels, &shared),
            SampleFormat::F64 => build_input::<f64>(&device, &config, channels, &shared),
            other => {
                return Err(AudioError::Device {
                    what: label,
                    why: format!("unsupported sample format {other}"),
                });
            }
        }
        .map_err(device_error(format!("{label}: open stream")))?;
        stream.play().map_err(device_error(format!("{label}: start stream")))?;
        Ok(Capture {
            _stream: stream,
            shared,
            scratch: Vec::with_capacity(queue_len(rate)),
            converter,
            out: Ring::new(queue_len(SAMPLE_RATE)),
        })
    }

    /// The next 20 ms of captured audio ([`FRAME_SAMPLES`] samples at 16 kHz
    /// mono), if the device has delivered that much.
    pub fn read_frame(&mut self) -> Option<Vec<i16>> {
        if self.out.len() < FRAME_SAMPLES {
            self.scratch.clear();
            self.shared.lock().drain_into(&mut self.scratch);
            if !self.scratch.is_empty() {
                let errors = self.converter.push(&self.scratch, &mut self.out);
                self.shared.errors.fetch_add(errors, Ordering::Relaxed);
            }
        }
        if self.out.len() < FRAME_SAMPLES {
            return None;
        }
        let mut frame = vec![0.0; FRAME_SAMPLES];
        self.out.pop_into(&mut frame);
        Some(frame.into_iter().map(i16::from_sample).collect())
    }

    /// What has been dropped or gone wrong since the device was opened.
    pub fn stats(&self) -> DeviceStats {
        let mut stats = self.shared.stats();
        stats.dropped_ms += samples_to_ms(self.out.dropped, SAMPLE_RATE);
        stats
    }
}

/// Audio played on an output device, written as 16 kHz mono frames.
pub struct Playback {
    /// Keeps the device running; dropping it stops the callback.
    _stream: cpal::Stream,
    shared: Arc<Shared>,
    converter: Converter,
    /// Device-rate mono samples from the converter, on their way to the
    /// shared queue.
    staged: Ring,
    scratch: Vec<f32>,
}

impl Playback {
    /// Opens the output device called `name` (as [`list`] reports it, or its
    /// audio-system ID), or the default output with `None`, and starts playing
    /// (silence until the first frame is written).
    pub fn open(name: Option<&str>) -> Result<Playback, AudioError> {
        let host = cpal::default_host();
        let device = find_device(&host, Direction::Output, name)?;
        let label = label(Direction::Output, name, &device);
        let config = device.default_output_config().map_err(config_error(
            Direction::Output,
            name,
            &label,
        ))?;
        let rate = config.sample_rate();
        let channels = usize::from(config.channels()).max(1);
        let converter = Converter::new(SAMPLE_RATE, rate)?;
        let shared = Arc::new(Shared::new(rate));
        let stream = match config.sample_format() {
            SampleFormat::I8 => build_output::<i8>(&device, &config, channels, &shared),
            SampleFormat::I16 => build_output::<i16>(&device, &config, channels, &shared),
            SampleFormat::I32 => build_output::<i32>(&device, &config, channels, &shared),
            SampleFormat::U8 => build_output::<u8>(&device, &config, channels, &shared),
            SampleFormat::U16 => build_output::<u16>(&device, &config, channels, &shared),
            SampleFormat::U32 => build_output::<u32>(&device, &config, channels, &shared),
            SampleFormat::F32 => build_output::<f32>(&device, &config, channels, &shared),
            SampleFormat::F64 => build_output::<f64>(&device, &config, channels, &shared),
            other => {
                return Err(AudioError::Device {
                    what: label,
                    why: format!("unsupported sample format {other}"),
                });
            }
        }
        .map_err(device_error(format!("{label}: open stream")))?;
        stream.play().map_err(device_error(format!("{label}: start stream")))?;
        Ok(Playback {
            _stream: stream,
            shared,
            converter,
            staged: Ring::new(queue_len(rate)),
            scratch: Vec::with_capacity(queue_len(rate)),
        })
    }

    /// Queues one 20 ms frame of 16 kHz mono audio for the device. A frame of
    /// the wrong length is played as far as it goes; the queue keeps the
    /// newest [`MAX_QUEUED_MS`] of audio.
    pub fn write_frame(&mut self, pcm: &[i16]) {
        let samples: Vec<f32> = pcm.iter().map(|&s| f32::from_sample(s)).collect();
        let errors = self.converter.push(&samples, &mut self.staged);
        self.shared.errors.fetch_add(errors, Ordering::Relaxed);
        self.scratch.clear();
        self.staged.drain_into(&mut self.scratch);
        self.shared.lock().push_all(self.scratch.iter().copied());
    }

    /// What has been dropped or gone wrong since the device was opened.
    pub fn stats(&self) -> DeviceStats {
        let mut stats = self.shared.stats();
        stats.dropped_ms += samples_to_ms(self.staged.dropped, self.shared.rate);
        stats
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Input,
    Output,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

fn find_device(
    host: &cpal::Host,
    direction: Direction,
    name: Option<&str>,
) -> Result<cpal::Device, AudioError> {
    let not_found =
        || AudioError::NoDevice { direction: direction.name(), name: name.map(str::to_owned) };
    let Some(name) = name else {
        let default = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        return default.ok_or_else(not_found);
    };
    let what = format!("list {}s", direction.name());
    let mut devices: Box<dyn Iterator<Item = cpal::Device>> = match direction {
        Direction::Input => Box::new(host.input_devices().map_err(device_error(what))?),
        Direction::Output => Box::new(host.output_devices().map_err(device_error(what))?),
    };
    devices.find(|d| answers_to(d, name)).ok_or_else(not_found)
}

/// Whether `name` is the device's name as [`list`] reports it, or its ID
/// (e.g. ALSA's `hw:CARD=PCH,DEV=0`, with or without the `alsa:` prefix),
/// since two cards can share a name.
fn answers_to(device: &cpal::Device, name: &str) -> bool {
    device_name(device).as_deref() == Some(name)
        || device.id().is_ok_and(|id| id.id() == name || id.to_string() == name)
}

/// The device's name, if the audio system can still describe it. Not
/// `to_string()`, whose `Display` fails (and so panics) on a vanished device.
fn device_name(device: &cpal::Device) -> Option<String> {
    device.description().ok().map(|d| d.name().to_owned())
}

fn label(direction: Direction, asked: Option<&str>, device: &cpal::Device) -> String {
    let name = asked
        .map(str::to_owned)
        .or_else(|| device_name(device))
        .unwrap_or_else(|| "(unnamed)".to_owned());
    format!("{} {name:?}", direction.name())
}

/// How long opening a stream may take before it is given up, so a wedged
/// audio server cannot hang the caller (not every backend honours it).
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// A default device that is listed but not there (ALSA's `default` on a
/// machine without a sound card) is reported as missing.
fn config_error(
    direction: Direction,
    name: Option<&str>,
    label: &str,
) -> impl FnOnce(cpal::Error) -> AudioError {
    move |e| match (name, e.kind()) {
        (None, ErrorKind::DeviceNotAvailable) => {
            AudioError::NoDevice { direction: direction.name(), name: None }
        }
        _ => device_error(format!("{label}: default config"))(e),
    }
}

fn device_error(what: String) -> impl FnOnce(cpal::Error) -> AudioError {
    move |e| AudioError::Device { what, why: e.to_string() }
}

fn build_input<T>(
    device: &cpal::Device,
    config: &cpal::SupportedStreamConfig,
    channels: usize,
    shared: &Arc<Shared>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let data_shared = Arc::clone(shared);
    let error_shared = Arc::clone(shared);
    device.build_input_stream::<T, _, _>(
        config.config(),
        move |data: &[T], _| {
            let frames = data.len() / channels;
            match data_shared.try_lock() {
                Some(mut queue) => queue.push_all(downmix(data, channels)),
                None => {
                    data_shared.busy_dropped.fetch_add(frames as u64, Ordering::Relaxed);
                }
            }
        },
        move |e: cpal::Error| error_shared.count_error(&e),
        Some(OPEN_TIMEOUT),
    )
}

fn build_output<T>(
    device: &cpal::Device,
    config: &cpal::SupportedStreamConfig,
    channels: usize,
    shared: &Arc<Shared>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let data_shared = Arc::clone(shared);
    let error_shared = Arc::clone(shared);
    device.build_output_stream::<T, _, _>(
        config.config(),
        move |data: &mut [T], _| {
            // cpal hands the buffer pre-filled with silence, so a busy queue
            // or an underrun leaves silence behind.
            let missing = match data_shared.try_lock() {
                Some(mut queue) => upmix_from(&mut queue, data, channels),
                None => data.len() / channels,
            };
            data_shared.underrun.fetch_add(missing as u64, Ordering::Relaxed);
        },
        move |e: cpal::Error| error_shared.count_error(&e),
        Some(OPEN_TIMEOUT),
    )
}

/// Mixes interleaved frames of `channels` samples down to mono.
fn downmix<T>(data: &[T], channels: usize) -> impl Iterator<Item = f32> + '_
where
    T: Sample,
    f32: FromSample<T>,
{
    let scale = 1.0 / channels as f32;
    data.chunks_exact(channels)
        .map(move |frame| frame.iter().map(|&s| f32::from_sample(s)).sum::<f32>() * scale)
}

/// Fills interleaved frames of `channels` samples from the mono queue, the
/// same sample on every channel; returns how many frames found the queue
/// empty (and were left as they were).
fn upmix_from<T>(queue: &mut Ring, data: &mut [T], channels: usize) -> usize
where
    T: Sample + FromSample<f32>,
{
    let mut missing = 0;
    for frame in data.chunks_exact_mut(channels) {
        match queue.pop() {
            Some(v) => frame.fill(T::from_sample(v.clamp(-1.0, 1.0))),
            None => missing += 1,
        }
    }
    missing
}

/// State shared between a device callback and its user.
struct Shared {
    /// The device's sample rate.
    rate: u32,
    /// Device-rate mono samples.
    queue: Mutex<Ring>,
    /// Frames the callback dropped because the user held the queue.
    busy_dropped: AtomicU64,
    /// Frames of silence played for lack of audio.
    underrun: AtomicU64,
    errors: AtomicU64,
}

impl Shared {
    fn new(rate: u32) -> Shared {
        Shared {
            rate,
            queue: Mutex::new(Ring::new(queue_len(rate))),
            busy_dropped: AtomicU64::new(0),
            underrun: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// The queue, for the user's thread. Nothing panics while holding it, so
    /// a poisoned lock still guards consistent data.
    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The queue, for the device callback, which must not wait.
    fn try_lock(&self) -> Option<MutexGuard<'_, Ring>> {
        match self.queue.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Called from the stream's error callback: counts, never blocks.
    fn count_error(&self, e: &cpal::Error) {
        // A followed default-device change is news, not a fault.
        if e.kind() != ErrorKind::DeviceChanged {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stats(&self) -> DeviceStats {
        let dropped = self.lock().dropped + self.busy_dropped.load(Ordering::Relaxed);
        DeviceStats {
            dropped_ms: samples_to_ms(dropped, self.rate),
            underrun_ms: samples_to_ms(self.underrun.load(Ordering::Relaxed), self.rate),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Samples in [`MAX_QUEUED_MS`] at `rate`.
fn queue_len(rate: u32) -> usize {
    (u64::from(rate) * u64::from(MAX_QUEUED_MS) / 1000).max(1) as usize
}

fn samples_to_ms(samples: u64, rate: u32) -> u64 {
    samples.saturating_mul(1000) / u64::from(rate.max(1))
}

/// A bounded FIFO of mono samples that drops its oldest samples to make room.
/// Its storage is allocated once, so pushing from a device callback never
/// allocates.
#[derive(Debug)]
struct Ring {
    buf: VecDeque<f32>,
    cap: usize,
    /// Samples dropped to make room since creation.
    dropped: u64,
}

impl Ring {
    fn new(cap: usize) -> Ring {
        let cap = cap.max(1);
        Ring { buf: VecDeque::with_capacity(cap), cap, dropped: 0 }
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    fn push_all(&mut self, samples: impl IntoIterator<Item = f32>) {
        for s in samples {
            if self.buf.len() == self.cap {
                self.buf.pop_front();
                self.dropped += 1;
            }
            self.buf.push_back(s);
        }
    }

    fn pop(&mut self) -> Option<f32> {
        self.buf.pop_front()
    }

    /// Fills `out` from the front; returns how many samples it took.
    fn pop_into(&mut self, out: &mut [f32]) -> usize {
        let n = out.len().min(self.buf.len());
        for (slot, s) in out.iter_mut().zip(self.buf.drain(..n)) {
            *slot = s;
        }
        n
    }

    fn drain_into(&mut self, out: &mut Vec<f32>) {
        out.extend(self.buf.drain(..));
    }
}

/// Mono sample-rate conversion in fixed 20 ms input chunks.
struct Converter {
    /// `None` when the rates are equal.
    resampler: Option<Fft<f32>>,
    /// Input waiting for a whole chunk.
    pending: Vec<f32>,
    output: Vec<f32>,
}

impl Converter {
    fn new(from: u32, to: u32) -> Result<Converter, AudioError> {
        if from == to {
            return Ok(Converter { resampler: None, pending: Vec::new(), output: Vec::new() });
        }
        let chunk = (from / (1000 / FRAME_MS)).max(1) as usize;
        let resampler = Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
            .map_err(|e| AudioError::Device {
                what: format!("resampler {from} Hz to {to} Hz"),
                why: e.to_string(),
            })?;
        let output = vec![0.0; resampler.output_frames_max()];
        Ok(Converter { resampler: Some(resampler), pending: Vec::with_capacity(2 * chunk), output })
    }

    /// Converts `input` (and any input left from before), appending what is
    /// ready to `out`. Returns how many chunks the resampler refused; their
    /// audio is dropped.
    fn push(&mut self, input: &[f32], out: &mut Ring) -> u64 {
        let Some(resampler) = self.resampler.as_mut() else {
            out.push_all(input.iter().copied());
            return 0;
        };
        self.pending.extend_from_slice(input);
        let mut errors = 0;
        let mut start = 0;
        loop {
            let need = resampler.input_frames_next();
            if self.pending.len() - start < need {
                break;
            }
            let chunk = &self.pending[start..start + need];
            start += need;
            let frames_out = self.output.len();
            let done = InterleavedSlice::new(chunk, 1, need).and_then(|input| {
                InterleavedSlice::new_mut(&mut self.output, 1, frames_out)
                    .map(|output| (input, output))
            });
            let Ok((input, mut output)) = done else {
                errors += 1;
                continue;
            };
            match resampler.process_into_buffer(&input, &mut output, None) {
                Ok((_, produced)) => out.push_all(self.output[..produced].iter().copied()),
                Err(_) => errors += 1,
            }
        }
        self.pending.drain(..start);
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_and_playback_are_send() {
        fn send<T: Send>() {}
        send::<Capture>();
        send::<Playback>();
    }

    #[test]
    fn listing_devices_does_not_panic() {
        // With no sound hardware the host may report empty lists or an
        // error; either must come back as a value.
        match list() {
            Ok(devices) => {
                assert!(devices.inputs.iter().all(|n| !n.is_empty()));
                assert!(devices.outputs.iter().all(|n| !n.is_empty()));
            }
            Err(e) => assert_eq!(e.fault(), crate::Fault::Local, "{e}"),
        }
    }

    #[test]
    fn an_unknown_capture_device_is_a_typed_error_naming_it() {
        let Err(e) = Capture::open(Some("no such device")) else {
            panic!("opened a device that does not exist");
        };
        assert_eq!(e.fault(), crate::Fault::Local);
        match &e {
            AudioError::NoDevice { direction, name } => {
                assert_eq!(*direction, "input");
                assert_eq!(name.as_deref(), Some("no such device"));
            }
            // Listing itself can fail on a machine without sound hardware.
            AudioError::Device { .. } => {}
            other => panic!("unexpected error {other:?}"),
        }
        if matches!(e, AudioError::NoDevice { .. }) {
            assert!(e.to_string().contains("\"no such device\""), "{e}");
        }
    }

    #[test]
    fn an_unknown_playback_device_is_a_typed_error_naming_it() {
        let Err(e) = Playback::open(Some("no such device")) else {
            panic!("opened a device that does not exist");
        };
        assert_eq!(e.fault(), crate::Fault::Local);
        assert!(
            matches!(
                e,
                AudioError::NoDevice { direction: "output", .. } | AudioError::Device { .. }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn the_default_devices_open_or_fail_with_a_typed_error() {
        // On a machine with sound hardware these open; without, they must
        // say so rather than panic.
        match Capture::open(None) {
            Ok(mut c) => {
                let _ = c.read_frame();
            }
            Err(e) => assert_eq!(e.fault(), crate::Fault::Local, "{e}"),
        }
        match Playback::open(None) {
            Ok(mut p) => p.write_frame(&[0; FRAME_SAMPLES]),
            Err(e) => assert_eq!(e.fault(), crate::Fault::Local, "{e}"),
        }
    }

    /// ALSA's `null` device, present wherever alsa-lib is, even without a
    /// sound card: capture yields zeros, playback discards.
    fn null_device() -> Option<String> {
        let host = cpal::default_host();
        let found = host.input_devices().ok()?.any(|d| d.id().is_ok_and(|id| id.id() == "null"));
        found.then(|| "null".to_owned())
    }

    #[test]
    fn capture_from_the_null_device_yields_silent_frames() {
        let Some(name) = null_device() else { return };
        let mut capture = match Capture::open(Some(&name)) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut frames = 0;
        while frames < 5 && std::time::Instant::now() < deadline {
            match capture.read_frame() {
                Some(frame) => {
                    assert_eq!(frame.len(), FRAME_SAMPLES);
                    assert!(frame.iter().all(|&s| s == 0), "{frame:?}");
                    frames += 1;
                }
                None => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        assert_eq!(frames, 5, "{:?}", capture.stats());
    }

    #[test]
    fn playback_to_the_null_device_is_bounded_and_drained() {
        let Some(name) = null_device() else { return };
        let mut playback = match Playback::open(Some(&name)) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        // Two seconds written at once: the queue keeps at most 200 ms.
        for _ in 0..100 {
            playback.write_frame(&[1_000; FRAME_SAMPLES]);
            let queued = playback.shared.lock().len();
            assert!(queued <= queue_len(playback.shared.rate), "{queued}");
        }
        // The device callback takes what was written (the null device runs
        // unclocked, so how much was dropped first depends on timing).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while playback.shared.lock().len() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(playback.shared.lock().len(), 0, "{:?}", playback.stats());
        assert_eq!(playback.stats().errors, 0);
    }

    #[test]
    fn no_device_messages_name_the_device() {
        let named =
            AudioError::NoDevice { direction: "output", name: Some("USB Headset".to_owned()) };
        assert_eq!(named.to_string(), "no output sound device named \"USB Headset\"");
        let default = AudioError::NoDevice { direction: "input", name: None };
        assert_eq!(default.to_string(), "no default input sound device");
    }

    #[test]
    fn ring_drops_oldest_when_full_and_counts() {
        let mut ring = Ring::new(4);
        ring.push_all([1.0, 2.0, 3.0]);
        assert_eq!(ring.dropped, 0);
        ring.push_all([4.0, 5.0, 6.0]);
        assert_eq!(ring.len(), 4);
        assert_eq!(ring.dropped, 2);
        let mut out = [0.0; 3];
        assert_eq!(ring.pop_into(&mut out), 3);
        assert_eq!(out, [3.0, 4.0, 5.0]);
        assert_eq!(ring.pop(), Some(6.0));
        assert_eq!(ring.pop(), None);
        let mut out = [9.0; 2];
        assert_eq!(ring.pop_into(&mut out), 0);
        assert_eq!(out, [9.0, 9.0]);
    }

    #[test]
    fn ring_never_grows_past_its_allocation() {
        let mut ring = Ring::new(queue_len(48_000));
        let cap = ring.buf.capacity();
        ring.push_all(std::iter::repeat_n(0.5, 10 * cap));
        assert_eq!(ring.buf.capacity(), cap);
        assert_eq!(ring.len(), queue_len(48_000));
        assert_eq!(ring.dropped as usize, 10 * cap - queue_len(48_000));
    }

    #[test]
    fn queues_hold_200_ms() {
        assert_eq!(queue_len(16_000), 3_200);
        assert_eq!(queue_len(48_000), 9_600);
        assert_eq!(queue_len(44_100), 8_820);
        assert_eq!(samples_to_ms(9_600, 48_000), 200);
        assert_eq!(samples_to_ms(5, 0), 5_000);
    }

    #[test]
    fn downmix_averages_channels() {
        let stereo: [i16; 6] = [i16::MAX, i16::MAX, 0, 0, -16_384, 16_384];
        let mono: Vec<f32> = downmix(&stereo, 2).collect();
        assert_eq!(mono.len(), 3);
        assert!((mono[0] - 1.0).abs() < 1e-3, "{mono:?}");
        assert_eq!(mono[1], 0.0);
        assert_eq!(mono[2], 0.0);
        // A trailing partial frame is not audio.
        assert_eq!(downmix(&[0.25f32, 0.25, 0.25], 2).count(), 1);
    }

    #[test]
    fn upmix_copies_each_sample_to_every_channel_and_counts_underruns() {
        let mut queue = Ring::new(8);
        queue.push_all([0.5, -0.5]);
        let mut out = [0i16; 8];
        let missing = upmix_from(&mut queue, &mut out, 2);
        assert_eq!(missing, 2);
        assert_eq!(out[0], out[1]);
        assert_eq!(out[2], out[3]);
        assert!((i32::from(out[0]) - 16_384).abs() <= 1, "{out:?}");
        assert!((i32::from(out[2]) + 16_384).abs() <= 1, "{out:?}");
        assert_eq!(&out[4..], &[0; 4]);
    }

    /// A sine wave of `hz` at `rate`, `n` samples long.
    fn sine(hz: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
            .collect()
    }

    /// Zero crossings going up, as a frequency estimate.
    fn rising_crossings(x: &[f32]) -> usize {
        x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count()
    }

    fn convert(from: u32, to: u32, input: &[f32], piece: usize) -> Vec<f32> {
        let mut conv = match Converter::new(from, to) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let mut out = Ring::new(input.len() * 4);
        for chunk in input.chunks(piece) {
            assert_eq!(conv.push(chunk, &mut out), 0);
        }
        let mut v = Vec::new();
        out.drain_into(&mut v);
        v
    }

    #[test]
    fn resampling_keeps_duration_and_pitch() {
        for (rate, piece) in [(48_000, 480), (44_100, 441), (8_000, 100), (22_050, 1_000)] {
            // One second at the device rate, fed in callback-sized pieces.
            let input = sine(440.0, rate, rate as usize);
            let out = convert(rate, SAMPLE_RATE, &input, piece);
            // Whole chunks only and the resampler's delay: within 50 ms.
            let want = SAMPLE_RATE as usize;
            assert!(out.len() <= want && out.len() + 800 >= want, "{rate}: {}", out.len());
            // Skip the filter's start-up, then count cycles: 440 Hz stays 440 Hz.
            let settled = &out[800..];
            let hz = rising_crossings(settled) as f32 * SAMPLE_RATE as f32 / settled.len() as f32;
            assert!((hz - 440.0).abs() < 5.0, "{rate}: {hz} Hz");
            let peak = settled.iter().fold(0.0f32, |m, s| m.max(s.abs()));
            assert!((peak - 0.5).abs() < 0.05, "{rate}: peak {peak}");
        }
    }

    #[test]
    fn resampling_up_to_the_device_rate() {
        let input = sine(1_000.0, SAMPLE_RATE, SAMPLE_RATE as usize);
        // Frames as `write_frame` hands them over.
        let out = convert(SAMPLE_RATE, 48_000, &input, FRAME_SAMPLES);
        assert!(out.len() <= 48_000 && out.len() + 2_400 >= 48_000, "{}", out.len());
        let settled = &out[2_400..];
        let hz = rising_crossings(settled) as f32 * 48_000.0 / settled.len() as f32;
        assert!((hz - 1_000.0).abs() < 10.0, "{hz} Hz");
    }

    #[test]
    fn equal_rates_pass_through() {
        let input = sine(300.0, SAMPLE_RATE, 1_000);
        assert_eq!(convert(SAMPLE_RATE, SAMPLE_RATE, &input, 77), input);
    }
}
