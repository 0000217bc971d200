//! Tempo on synthetic drum patterns at known tempi: straight, swung and syncopated grooves with
//! noise and a melody on top, which must come out within 4 % of the tempo they were written at
//! (not at half or double: the prior has to pick the written octave). The tempi span 80–150 BPM,
//! where a listener agrees on the octave; below that the prior hears a 72 BPM groove with
//! sixteenth-note hats at 144, as most listeners and the peers do.

use timbre_descriptors::{analyse, Config};

const RATE: u32 = 22_050;
const SECONDS: f64 = 30.0;

/// A small deterministic generator: the tests must not depend on a random seed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

#[derive(Clone, Copy)]
enum Drum {
    Kick,
    Snare,
    Hat,
}

/// Add one drum hit at `at` seconds.
fn hit(out: &mut [f32], at: f64, drum: Drum, gain: f32, noise: &mut Noise) {
    let start = (at * RATE as f64) as usize;
    let length = (0.3 * RATE as f64) as usize;
    let mut phase = 0.0f64;
    let mut last = 0.0f32;
    for i in 0..length.min(out.len().saturating_sub(start)) {
        let t = i as f64 / RATE as f64;
        let sample = match drum {
            // A falling sine: 120 Hz down to 50.
            Drum::Kick => {
                phase += 2.0 * std::f64::consts::PI * (50.0 + 70.0 * (-t * 30.0).exp()) / RATE as f64;
                (phase.sin() * (-t * 12.0).exp()) as f32
            }
            Drum::Snare => {
                let body = (2.0 * std::f64::consts::PI * 190.0 * t).sin() * (-t * 25.0).exp();
                (0.5 * body) as f32 + 0.6 * noise.next() * (-t * 18.0).exp() as f32
            }
            // Differenced noise: mostly highs.
            Drum::Hat => {
                let n = noise.next();
                let high = n - last;
                last = n;
                0.3 * high * (-t * 60.0).exp() as f32
            }
        };
        out[start + i] += gain * sample;
    }
}

/// A groove: hits per bar as (beat position, drum), at `bpm`, with a melody and noise.
fn groove(bpm: f64, bar: &[(f64, Drum)], seed: u64) -> Vec<f32> {
    let mut noise = Noise(seed);
    let mut out = vec![0.0f32; (SECONDS * RATE as f64) as usize];
    let beat = 60.0 / bpm;
    let mut t = 0.1;
    while t < SECONDS {
        for &(position, drum) in bar {
            // A human drummer: a few milliseconds early or late.
            let jitter = 0.004 * noise.next() as f64;
            hit(&mut out, t + position * beat + jitter, drum, 0.7 + 0.2 * noise.next().abs(), &mut noise);
        }
        t += 4.0 * beat;
    }
    // A melody: a note every one to three beats from a pentatonic scale, with soft attacks.
    let scale = [0, 2, 4, 7, 9, 12, 14];
    let mut at = 0.0;
    while at < SECONDS {
        let note = scale[(noise.next().abs() * scale.len() as f32) as usize % scale.len()];
        let length = beat * (1 + (noise.next().abs() * 3.0) as usize) as f64;
        let f = 220.0 * 2f64.powf(note as f64 / 12.0);
        let (from, to) = ((at * RATE as f64) as usize, (((at + length) * RATE as f64) as usize).min(out.len()));
        for (i, sample) in out[from..to].iter_mut().enumerate() {
            let t = i as f64 / RATE as f64;
            let envelope = (t / 0.05).min(1.0) * (-t * 1.5).exp();
            *sample += (0.15
                * envelope
                * ((2.0 * std::f64::consts::PI * f * t).sin() + 0.3 * (4.0 * std::f64::consts::PI * f * t).sin()))
                as f32;
        }
        at += length;
    }
    for sample in &mut out {
        *sample = 0.5 * *sample + 0.02 * noise.next();
    }
    out
}

fn patterns() -> Vec<(&'static str, Vec<(f64, Drum)>)> {
    use Drum::*;
    let eighths = |drum| (0..8).map(move |i| (i as f64 * 0.5, drum));
    let mut rock = vec![(0.0, Kick), (2.0, Kick), (1.0, Snare), (3.0, Snare)];
    rock.extend(eighths(Hat));
    // Swing: the off-beat eighth falls two thirds of the way through the beat.
    let mut swing = vec![(0.0, Kick), (2.0, Kick), (1.0, Snare), (3.0, Snare)];
    swing.extend((0..4).flat_map(|b| [(b as f64, Hat), (b as f64 + 2.0 / 3.0, Hat)]));
    // Syncopation: the kick on the "and" of two and just before four, sixteenth hats.
    let mut funk = vec![(0.0, Kick), (1.5, Kick), (2.75, Kick), (1.0, Snare), (3.0, Snare)];
    funk.extend((0..16).map(|i| (i as f64 * 0.25, Hat)));
    vec![("rock", rock), ("swing", swing), ("syncopated", funk)]
}

#[test]
fn synthetic_grooves_come_out_at_their_written_tempo() {
    let mut failures = Vec::new();
    let mut n = 0;
    for (name, bar) in patterns() {
        for (i, bpm) in [80.0, 88.0, 100.0, 112.0, 124.0, 136.0, 150.0].into_iter().enumerate() {
            let audio = groove(bpm, &bar, 0x9E37_79B9_7F4A_7C15 ^ ((i as u64 + 1) * 7919));
            let estimate = analyse(&Config::default(), RATE, 1, &audio).expect("analyse").tempo.expect("a tempo");
            let error = (estimate.bpm / bpm - 1.0).abs();
            eprintln!(
                "{name:<11} {bpm:>5.1} BPM -> {:>6.1} (confidence {:.2}, error {:.1} %)",
                estimate.bpm,
                estimate.confidence,
                100.0 * error
            );
            n += 1;
            if error > 0.04 {
                failures.push(format!("{name} at {bpm}: {:.1}", estimate.bpm));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {n} grooves off by more than 4 %: {failures:?}", failures.len());
}
