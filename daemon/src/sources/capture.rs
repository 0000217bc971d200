//! An input device through cpal (ALSA on Linux), converted to mono f32 in the audio callback.
//!
//! A device is lost when cpal reports an error or when no audio arrives for [`STALL`]; the run
//! then ends and the supervisor in `mod.rs` reopens the device after a back-off.
//!
//! PulseAudio: ALSA's `default` and `pulse` devices record from PulseAudio's default source,
//! or from `$PULSE_SOURCE` when the daemon's environment sets it (e.g. a null sink's monitor,
//! see `scripts/pulseaudio`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use super::{Output, PcmBlock, SourceError, POLL};

/// No audio for this long means the device is gone, even if it reported nothing.
const STALL: Duration = Duration::from_secs(5);
/// Blocks held between the audio callback and this thread; more are dropped, not queued.
const QUEUE: usize = 64;
/// How long ALSA may take to set a stream up, and to close it.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn run(name: &str, wanted: Option<&str>, out: &Output) -> Result<(), SourceError> {
    let host = cpal::default_host();
    let device = select_device(&host, wanted)?;
    let label = wanted.unwrap_or("default").to_string();
    let device_error = |e: cpal::Error| SourceError::Device { device: label.clone(), reason: e.to_string() };
    let supported = device.default_input_config().map_err(device_error)?;
    let config = supported.config();
    let (data_tx, data_rx) = mpsc::sync_channel(QUEUE);
    let (error_tx, error_rx) = mpsc::sync_channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let callbacks = Callbacks { data: data_tx, errors: error_tx, dropped: dropped.clone() };
    let stream = match supported.sample_format() {
        SampleFormat::I8 => build::<i8>(&device, config, callbacks),
        SampleFormat::I16 => build::<i16>(&device, config, callbacks),
        SampleFormat::I24 => build::<cpal::I24>(&device, config, callbacks),
        SampleFormat::I32 => build::<i32>(&device, config, callbacks),
        SampleFormat::I64 => build::<i64>(&device, config, callbacks),
        SampleFormat::U8 => build::<u8>(&device, config, callbacks),
        SampleFormat::U16 => build::<u16>(&device, config, callbacks),
        SampleFormat::U24 => build::<cpal::U24>(&device, config, callbacks),
        SampleFormat::U32 => build::<u32>(&device, config, callbacks),
        SampleFormat::U64 => build::<u64>(&device, config, callbacks),
        SampleFormat::F32 => build::<f32>(&device, config, callbacks),
        SampleFormat::F64 => build::<f64>(&device, config, callbacks),
        other => {
            return Err(SourceError::Device {
                device: label,
                reason: format!("its default sample format {other} is not PCM"),
            })
        }
    }
    .map_err(device_error)?;
    stream.play().map_err(device_error)?;
    tracing::info!(
        source = %name,
        "live source \"{name}\": capturing from \"{label}\" ({} Hz, {} channel(s), {})",
        config.sample_rate,
        config.channels,
        supported.sample_format()
    );
    let result = pump(name, &label, config.sample_rate, &data_rx, &error_rx, &dropped, out);
    close(name, stream, &label);
    result
}

/// Close the stream on a thread of its own, waiting [`CLOSE_TIMEOUT`] at most. Closing a device
/// that has gone can block forever (ALSA's PulseAudio plugin deadlocks when the server dies),
/// and that must not stop the retries; such a stream is left behind, with a warning.
fn close(name: &str, stream: cpal::Stream, device: &str) {
    let (closed_tx, closed_rx) = mpsc::channel();
    let closer = std::thread::Builder::new().name(format!("close-{device}")).spawn(move || {
        drop(stream);
        let _ = closed_tx.send(());
    });
    // Without a thread the closure (and the stream) was dropped right here, so it is closed.
    if closer.is_ok() && closed_rx.recv_timeout(CLOSE_TIMEOUT).is_err() {
        let seconds = CLOSE_TIMEOUT.as_secs();
        tracing::warn!(source = %name, "live source \"{name}\": capture device \"{device}\" did not close within {seconds} s; leaving it behind");
    }
}

/// Forward blocks until the source should end or the device fails.
fn pump(
    name: &str,
    device: &str,
    sample_rate: u32,
    data: &Receiver<Vec<f32>>,
    errors: &Receiver<cpal::Error>,
    dropped: &AtomicU64,
    out: &Output,
) -> Result<(), SourceError> {
    let mut last_data = Instant::now();
    let mut xruns = 0u64;
    let mut drops = DropReport::default();
    while !out.stopped() {
        match errors.try_recv() {
            // An overrun loses a few samples; cpal has already restarted the stream.
            Ok(e) if e.kind() == cpal::ErrorKind::Xrun => {
                xruns += 1;
                tracing::debug!(source = %name, device, xruns, "capture overrun");
            }
            Ok(e) => return Err(SourceError::Device { device: device.to_string(), reason: e.to_string() }),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
        }
        match data.recv_timeout(POLL) {
            Ok(samples) => {
                last_data = Instant::now();
                if !out.send(PcmBlock { samples, sample_rate }) {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) if last_data.elapsed() < STALL => {}
            Err(RecvTimeoutError::Timeout) => {
                return Err(SourceError::Stalled { device: device.to_string(), seconds: STALL });
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(SourceError::Device { device: device.to_string(), reason: "the stream closed".into() });
            }
        }
        drops.check(name, device, dropped.load(Ordering::Relaxed));
    }
    Ok(())
}

/// Warns about blocks dropped for a slow consumer, at most once per [`DropReport::EVERY`].
#[derive(Default)]
struct DropReport {
    reported: u64,
    last: Option<Instant>,
}

impl DropReport {
    const EVERY: Duration = Duration::from_secs(10);

    fn check(&mut self, name: &str, device: &str, dropped: u64) {
        if dropped > self.reported && self.last.is_none_or(|t| t.elapsed() >= Self::EVERY) {
            let blocks = dropped - self.reported;
            tracing::warn!(
                source = %name,
                "live source \"{name}\": capture device \"{device}\": dropped {blocks} blocks: the consumer is not keeping up"
            );
            self.reported = dropped;
            self.last = Some(Instant::now());
        }
    }
}

/// `default` (or no name) is the system default input; any other name must match a device's
/// ALSA name (`pulse`, `hw:CARD=…`) or its description exactly.
fn select_device(host: &cpal::Host, wanted: Option<&str>) -> Result<cpal::Device, SourceError> {
    let Some(wanted) = wanted.filter(|w| *w != "default") else {
        return host.default_input_device().ok_or(SourceError::NoDefaultInput);
    };
    let devices =
        host.input_devices().map_err(|e| SourceError::Device { device: wanted.to_string(), reason: e.to_string() })?;
    let mut listed = Vec::new();
    for device in devices {
        let (id, description) = names(&device);
        if id == wanted || description == wanted {
            return Ok(device);
        }
        listed.push(format!("\"{id}\" ({description})"));
    }
    let available = if listed.is_empty() { "none".to_string() } else { listed.join(", ") };
    Err(SourceError::NoSuchDevice { name: wanted.to_string(), available })
}

/// A device's ALSA name and its human description.
fn names(device: &cpal::Device) -> (String, String) {
    let id = device.id().map(|id| id.id().to_string()).unwrap_or_default();
    let description = device.description().map(|d| d.name().to_string()).unwrap_or_default();
    (id, description)
}

/// What the audio callbacks hold: they run on cpal's thread and must never block.
struct Callbacks {
    data: SyncSender<Vec<f32>>,
    errors: SyncSender<cpal::Error>,
    dropped: Arc<AtomicU64>,
}

fn build<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    callbacks: Callbacks,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels).max(1);
    let Callbacks { data, errors, dropped } = callbacks;
    device.build_input_stream::<T, _, _>(
        config,
        move |samples: &[T], _: &cpal::InputCallbackInfo| {
            if data.try_send(downmix(samples, channels)).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        },
        move |error| {
            // A full queue already holds an error that ends the run.
            let _ = errors.try_send(error);
        },
        Some(OPEN_TIMEOUT),
    )
}

/// Interleaved frames of any sample type to mono f32, averaging the channels.
fn downmix<T>(interleaved: &[T], channels: usize) -> Vec<f32>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let scale = 1.0 / channels as f32;
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().map(|s| s.to_sample::<f32>()).sum::<f32>() * scale)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_format_downmixes_to_the_same_mono_signal() {
        // Stereo, full scale left and silence right: mono is half scale.
        assert_eq!(downmix(&[1.0f32, 0.0, -1.0, 0.0], 2), [0.5, -0.5]);
        assert_eq!(downmix(&[i16::MIN, 0, 0, 0], 2), [-0.5, 0.0]);
        assert_eq!(downmix(&[0u8, 128, 128, 128], 2), [-0.5, 0.0]);
        assert_eq!(downmix(&[i32::MIN, i32::MIN], 1), [-1.0, -1.0]);
        let quiet = downmix(&[u16::MAX, 32768, 32768, 32768], 2);
        assert!((quiet[0] - 0.5).abs() < 1e-4 && quiet[1] == 0.0, "{quiet:?}");
        // A partial trailing frame is never produced by a device; it is ignored rather than misread.
        assert_eq!(downmix(&[0.25f64, 0.25, 0.75], 2), [0.25]);
    }
}
