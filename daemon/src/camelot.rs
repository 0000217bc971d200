//! Keys on the Camelot wheel, for harmonic mixing.
//!
//! The wheel numbers the circle of fifths 1 to 12, with `A` for minor keys and `B` for major
//! ones: C major is 8B, its relative minor A minor is 8A, G major (a fifth up) is 9B. Two
//! tracks mix harmonically when their keys are the same, relative (8A and 8B) or next to each
//! other on the wheel in the same mode (8A with 7A and 9A).

use std::fmt;

/// A key as a position on the Camelot wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Camelot {
    /// 1 to 12, a fifth apart from one number to the next.
    number: u8,
    minor: bool,
}

impl Camelot {
    /// The key whose tonic is pitch class `tonic` (C = 0).
    pub fn from_key(tonic: usize, minor: bool) -> Camelot {
        // Majors: C = 8B and each fifth (7 semitones) up is one further. A minor key sits with
        // its relative major, three semitones above its tonic.
        let major_tonic = if minor { tonic + 3 } else { tonic } % 12;
        let number = ((major_tonic * 7) % 12 + 7) % 12 + 1;
        Camelot { number: number as u8, minor }
    }

    /// The key as the descriptors store it: the tonic's pitch class (C = 0) and the mode.
    pub fn key(self) -> (usize, bool) {
        // Inverse of `from_key`: 7 · 7 ≡ 1 (mod 12).
        let major_tonic = ((usize::from(self.number) + 12 - 8) * 7) % 12;
        let tonic = if self.minor { (major_tonic + 9) % 12 } else { major_tonic };
        (tonic, self.minor)
    }

    pub fn number(self) -> u8 {
        self.number
    }

    pub fn is_minor(self) -> bool {
        self.minor
    }

    /// "A minor", "C# major": the name the descriptors store.
    pub fn key_name(self) -> String {
        let (tonic, minor) = self.key();
        crate::pipeline::descriptors::key_name(tonic, minor)
    }

    /// A dense code 0..24, for storing a key in a byte.
    pub fn code(self) -> u8 {
        (self.number - 1) * 2 + u8::from(!self.minor)
    }

    pub fn from_code(code: u8) -> Option<Camelot> {
        (code < 24).then(|| Camelot { number: code / 2 + 1, minor: code % 2 == 0 })
    }

    /// The relative key: same number, other mode (8A and 8B).
    pub fn relative(self) -> Camelot {
        Camelot { minor: !self.minor, ..self }
    }

    /// One step round the wheel in the same mode: +1 is a fifth up, -1 a fifth down.
    pub fn step(self, steps: i8) -> Camelot {
        let number = (i16::from(self.number) - 1 + i16::from(steps)).rem_euclid(12) + 1;
        Camelot { number: number as u8, ..self }
    }

    /// The keys a track in this key mixes with: itself, its relative key and its neighbours
    /// a fifth up and down, in that order.
    pub fn compatible(self) -> [Camelot; 4] {
        [self, self.relative(), self.step(1), self.step(-1)]
    }

    /// Parse a key: `"A minor"`, `"F# major"`, `"Bb min"`, `"Am"`, `"C"` (a bare tonic is
    /// major), or Camelot `"8A"`.
    pub fn parse(text: &str) -> Option<Camelot> {
        let text = text.trim();
        if let Some(camelot) = Self::parse_camelot(text) {
            return Some(camelot);
        }
        let mut chars = text.chars();
        let letter = chars.next()?.to_ascii_uppercase();
        let natural = [0usize, 2, 4, 5, 7, 9, 11]["CDEFGAB".find(letter)?];
        let mut rest = chars.clone();
        let tonic = match rest.next() {
            Some('#' | '♯') => natural + 1,
            Some('b' | '♭') => natural + 11,
            _ => {
                rest = chars;
                natural
            }
        };
        let rest = rest.as_str();
        let minor = match rest.trim().to_ascii_lowercase().as_str() {
            "" | "major" | "maj" => false,
            "minor" | "min" | "m" => true,
            _ => return None,
        };
        Some(Camelot::from_key(tonic % 12, minor))
    }

    fn parse_camelot(text: &str) -> Option<Camelot> {
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (digits, letter) = text.split_at(split);
        let number: u8 = digits.parse().ok()?;
        let minor = match letter {
            "A" | "a" => true,
            "B" | "b" => false,
            _ => return None,
        };
        (1..=12).contains(&number).then_some(Camelot { number, minor })
    }
}

impl fmt::Display for Camelot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.number, if self.minor { 'A' } else { 'B' })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wheel as DJ software prints it.
    const WHEEL: [(&str, &str); 24] = [
        ("1A", "G# minor"),
        ("1B", "B major"),
        ("2A", "D# minor"),
        ("2B", "F# major"),
        ("3A", "A# minor"),
        ("3B", "C# major"),
        ("4A", "F minor"),
        ("4B", "G# major"),
        ("5A", "C minor"),
        ("5B", "D# major"),
        ("6A", "G minor"),
        ("6B", "A# major"),
        ("7A", "D minor"),
        ("7B", "F major"),
        ("8A", "A minor"),
        ("8B", "C major"),
        ("9A", "E minor"),
        ("9B", "G major"),
        ("10A", "B minor"),
        ("10B", "D major"),
        ("11A", "F# minor"),
        ("11B", "A major"),
        ("12A", "C# minor"),
        ("12B", "E major"),
    ];

    #[test]
    fn all_24_keys_sit_where_the_wheel_puts_them() {
        let mut codes = Vec::new();
        for (camelot, key) in WHEEL {
            let parsed = Camelot::parse(key).unwrap_or_else(|| panic!("{key} parses"));
            assert_eq!(parsed.to_string(), camelot, "{key}");
            assert_eq!(Camelot::parse(camelot), Some(parsed), "{camelot}");
            assert_eq!(parsed.key_name(), key, "{camelot} back to its key");
            let (tonic, minor) = parsed.key();
            assert_eq!(Camelot::from_key(tonic, minor), parsed);
            assert_eq!(Camelot::from_code(parsed.code()), Some(parsed));
            codes.push(parsed.code());
        }
        codes.sort_unstable();
        assert_eq!(codes, (0..24).collect::<Vec<u8>>(), "24 distinct codes");
    }

    #[test]
    fn relative_keys_share_a_number_and_neighbours_are_a_fifth_apart() {
        let key = |text: &str| Camelot::parse(text).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(key("A minor").relative(), key("C major"));
        assert_eq!(key("C major").relative(), key("A minor"));
        assert_eq!(key("E minor").relative(), key("G major"));
        // A fifth up and down, wrapping round 12 to 1.
        assert_eq!(key("C major").compatible(), [key("8B"), key("8A"), key("G major"), key("F major")]);
        assert_eq!(key("A minor").compatible(), [key("8A"), key("8B"), key("E minor"), key("D minor")]);
        assert_eq!(key("12B").step(1), key("1B"));
        assert_eq!(key("1A").step(-1), key("12A"));
        for code in 0..24 {
            let c = Camelot::from_code(code).expect("a code");
            let (tonic, _) = c.key();
            let (up, _) = c.step(1).key();
            assert_eq!((tonic + 7) % 12, up, "{c}: one step up is a fifth up");
            let (rel, _) = c.relative().key();
            let third = if c.is_minor() { 3 } else { 9 };
            assert_eq!((tonic + third) % 12, rel, "{c}: relative key");
            // Compatibility is symmetric.
            for other in c.compatible() {
                assert!(other.compatible().contains(&c), "{c} and {other}");
            }
            assert_eq!(c.compatible().iter().collect::<std::collections::HashSet<_>>().len(), 4);
        }
    }

    #[test]
    fn spellings_are_accepted_and_nonsense_refused() {
        let key = |text: &str| Camelot::parse(text).map(|c| c.to_string());
        assert_eq!(key(" a minor "), Some("8A".into()));
        assert_eq!(key("Am"), Some("8A".into()));
        assert_eq!(key("Bb major"), Some("6B".into()));
        assert_eq!(key("A#"), Some("6B".into()));
        assert_eq!(key("C# min"), Some("12A".into()));
        assert_eq!(key("Db"), Some("3B".into()));
        assert_eq!(key("8a"), Some("8A".into()));
        assert_eq!(key("12B"), Some("12B".into()));
        for bad in ["", "H minor", "13A", "0B", "8C", "A dorian", "minor", "A##", "8", "Cbb"] {
            assert_eq!(Camelot::parse(bad), None, "{bad:?}");
        }
    }
}
