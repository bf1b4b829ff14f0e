//! 16 kHz mono 16-bit WAV files, for tests and the voice bench.

use std::path::Path;

use crate::codec::SAMPLE_RATE;
use crate::error::AudioError;

fn spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

/// Reads a 16 kHz mono 16-bit PCM WAV file; any other format is refused
/// (this crate does not resample).
pub fn read(path: &Path) -> Result<Vec<i16>, AudioError> {
    let reader = hound::WavReader::open(path)?;
    let s = reader.spec();
    if s != spec() {
        return Err(AudioError::UnsupportedWav {
            rate: s.sample_rate,
            channels: s.channels,
            bits: s.bits_per_sample,
        });
    }
    reader.into_samples::<i16>().collect::<Result<Vec<_>, _>>().map_err(AudioError::from)
}

/// Writes samples as a 16 kHz mono 16-bit PCM WAV file.
pub fn write(path: &Path, samples: &[i16]) -> Result<(), AudioError> {
    let mut w = hound::WavWriter::create(path, spec())?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("yonder-audio-{}-{name}", std::process::id()))
    }

    #[test]
    fn write_read_round_trip() {
        let p = tmp("rt.wav");
        let x: Vec<i16> = (0..1000).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        write(&p, &x).unwrap();
        assert_eq!(read(&p).unwrap(), x);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn rejects_other_rates_and_channels() {
        for (rate, channels) in [(48_000, 1), (16_000, 2)] {
            let p = tmp(&format!("{rate}-{channels}.wav"));
            let spec = hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::create(&p, spec).unwrap();
            w.write_sample(0i16).unwrap();
            w.write_sample(0i16).unwrap();
            w.finalize().unwrap();
            let err = read(&p).unwrap_err();
            assert!(
                matches!(err, AudioError::UnsupportedWav { rate: r, channels: c, .. } if r == rate && c == channels)
            );
            assert!(err.to_string().contains("16000 Hz mono"));
            std::fs::remove_file(&p).unwrap();
        }
        assert!(matches!(read(&tmp("missing.wav")), Err(AudioError::Wav(_))));
    }
}
