//! Key profiles: how much each scale degree sounds in a key, from the tonic up, major then
//! minor. A chroma vector is correlated with each of the 24 rotations; the best is the key.
//! Which profile suits recorded music best is an empirical question, answered on the
//! annotated pool clips (docs/EVALUATION.md).

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub major: [f64; 12],
    pub minor: [f64; 12],
}

pub const PROFILES: [Profile; 7] = [
    // Krumhansl & Kessler 1982: listeners' probe-tone ratings.
    Profile {
        name: "krumhansl",
        major: [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88],
        minor: [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17],
    },
    // Temperley 1999, "What's key for key?": a revision of Krumhansl's for score-based finding.
    Profile {
        name: "temperley",
        major: [5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0],
        minor: [5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0],
    },
    // Temperley 2007 (Music and Probability): pitch-class frequencies in the Kostka-Payne corpus.
    Profile {
        name: "kostka-payne",
        major: [0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400],
        minor: [0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330],
    },
    // Gómez 2006 as libKeyFinder transcribes it: Temperley's profile heard through the chroma of
    // recordings. Kept for comparison; the "bgate" transcription below is the one that works.
    Profile {
        name: "gomez",
        major: [0.82, 0.00, 0.55, 0.00, 0.53, 0.30, 0.08, 1.00, 0.00, 0.38, 0.00, 0.47],
        minor: [0.81, 0.00, 0.53, 0.54, 0.00, 0.27, 0.07, 1.00, 0.27, 0.07, 0.10, 0.36],
    },
    // Gómez 2006 as Essentia ships it ("bgate"), its KeyExtractor's default.
    Profile {
        name: "bgate",
        major: [1.00, 0.00, 0.42, 0.00, 0.53, 0.37, 0.00, 0.77, 0.00, 0.38, 0.21, 0.30],
        minor: [1.00, 0.00, 0.36, 0.39, 0.00, 0.38, 0.00, 0.74, 0.27, 0.00, 0.42, 0.23],
    },
    // Sha'ath 2011 (KeyFinder): Krumhansl's, retuned on popular and electronic music.
    Profile {
        name: "shaath",
        major: [6.6, 2.0, 3.5, 2.3, 4.6, 4.0, 2.5, 5.2, 2.4, 3.7, 2.3, 3.4],
        minor: [6.5, 2.7, 3.5, 5.4, 2.6, 3.5, 2.5, 5.2, 4.0, 2.7, 4.3, 3.2],
    },
    // Faraldo et al. 2016, "edma": average chroma of electronic dance music, per mode.
    Profile {
        name: "edma",
        major: [1.0, 0.2875, 0.5020, 0.4048, 0.6050, 0.5614, 0.3205, 0.7966, 0.3159, 0.4506, 0.4202, 0.3889],
        minor: [1.0, 0.3096, 0.4415, 0.5827, 0.3262, 0.4948, 0.2889, 0.7804, 0.4328, 0.2903, 0.5331, 0.3217],
    },
];

/// The profile chosen on the annotated pool clips (docs/EVALUATION.md): best on the 44 annotated
/// 30 s clips (0.739, Krumhansl 0.736) and on the 319 annotated 2–3 s excerpts (0.435, next 0.434).
pub const DEFAULT_PROFILE: &str = "bgate";

pub fn by_name(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}
