//! numpy's `numpy.random.default_rng(entropy)`, as far as [`crate::split`] needs it: the seed
//! expanded by `SeedSequence`, the `PCG64` stream, and `Generator.permutation(n)`. The numbers
//! are numpy's, bit for bit (checked against numpy 2.4 in the tests below), so a split made by
//! Python with `default_rng([seed, crc32(label)]).permutation(n)` is made here again.
//!
//! References: numpy/random/bit_generator.pyx (SeedSequence), numpy/random/src/pcg64
//! (PCG64, XSL-RR output), numpy/random/_generator.pyx (`shuffle`) and
//! numpy/random/src/distributions/distributions.c (`random_interval`).

/// SeedSequence's hashing constants.
const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const POOL_SIZE: usize = 4;

/// PCG64's 128-bit LCG multiplier.
const PCG_MULTIPLIER: u128 = (2_549_297_995_355_413_924u128 << 64) | 4_865_540_595_714_422_341;

/// `numpy.random.default_rng(entropy)` for a list of non-negative integers, as a `PCG64` with
/// numpy's buffered 32-bit draws.
#[derive(Debug, Clone)]
pub struct Pcg64 {
    state: u128,
    increment: u128,
    /// The upper half of the last 64-bit draw, when a 32-bit draw used only the lower half.
    spare_u32: Option<u32>,
}

impl Pcg64 {
    /// `default_rng([entropy[0], entropy[1], ...])`.
    pub fn new(entropy: &[u64]) -> Pcg64 {
        let pool = seed_sequence_pool(&entropy_words(entropy));
        let words = generate_state(&pool, 8);
        let word = |i: usize| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
        let seed = (u128::from(word(0)) << 64) | u128::from(word(1));
        let sequence = (u128::from(word(2)) << 64) | u128::from(word(3));
        let mut rng = Pcg64 { state: 0, increment: (sequence << 1) | 1, spare_u32: None };
        rng.step();
        rng.state = rng.state.wrapping_add(seed);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULTIPLIER).wrapping_add(self.increment);
    }

    /// `bit_generator.random_raw()`.
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let folded = ((self.state >> 64) as u64) ^ (self.state as u64);
        folded.rotate_right((self.state >> 122) as u32)
    }

    /// numpy's `next_uint32`: the lower half of a 64-bit draw, then its upper half.
    pub fn next_u32(&mut self) -> u32 {
        if let Some(spare) = self.spare_u32.take() {
            return spare;
        }
        let next = self.next_u64();
        self.spare_u32 = Some((next >> 32) as u32);
        next as u32
    }

    /// numpy's `random_interval(max)`: uniform in `0..=max`, by masking and rejection.
    pub fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = u64::MAX >> max.leading_zeros();
        loop {
            let value =
                if max <= u64::from(u32::MAX) { u64::from(self.next_u32()) & mask } else { self.next_u64() & mask };
            if value <= max {
                return value;
            }
        }
    }

    /// `Generator.permutation(n)`: `arange(n)` shuffled in place (Fisher–Yates from the end).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut items: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u64) as usize;
            items.swap(i, j);
        }
        items
    }
}

/// The integers as SeedSequence takes them: each one's 32-bit words, least significant first
/// (zero is one word, 0).
fn entropy_words(entropy: &[u64]) -> Vec<u32> {
    let mut words = Vec::with_capacity(2 * entropy.len());
    for &value in entropy {
        words.push(value as u32);
        if value >> 32 != 0 {
            words.push((value >> 32) as u32);
        }
    }
    words
}

/// SeedSequence's `mix_entropy`: the entropy hashed into a pool of four words.
fn seed_sequence_pool(entropy: &[u32]) -> [u32; POOL_SIZE] {
    let mut hash_const = INIT_A;
    let mut hashmix = |value: u32| {
        let mut value = value ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_A);
        value = value.wrapping_mul(hash_const);
        value ^ (value >> 16)
    };
    let mix = |x: u32, y: u32| {
        let result = MIX_MULT_L.wrapping_mul(x).wrapping_sub(MIX_MULT_R.wrapping_mul(y));
        result ^ (result >> 16)
    };
    let mut pool = [0u32; POOL_SIZE];
    for (i, slot) in pool.iter_mut().enumerate() {
        *slot = hashmix(entropy.get(i).copied().unwrap_or(0));
    }
    for source in 0..POOL_SIZE {
        for destination in 0..POOL_SIZE {
            if source != destination {
                pool[destination] = mix(pool[destination], hashmix(pool[source]));
            }
        }
    }
    for &word in entropy.iter().skip(POOL_SIZE) {
        for slot in &mut pool {
            *slot = mix(*slot, hashmix(word));
        }
    }
    pool
}

/// SeedSequence's `generate_state(n_words, uint32)`.
fn generate_state(pool: &[u32; POOL_SIZE], n_words: usize) -> Vec<u32> {
    let mut hash_const = INIT_B;
    (0..n_words)
        .map(|i| {
            let mut value = pool[i % POOL_SIZE] ^ hash_const;
            hash_const = hash_const.wrapping_mul(MULT_B);
            value = value.wrapping_mul(hash_const);
            value ^ (value >> 16)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every expected value below was printed by numpy 2.4.6, e.g.
    // `np.random.PCG64(np.random.SeedSequence([0, 5])).random_raw(3)`.

    #[test]
    fn the_raw_stream_is_numpys() {
        let raw = |entropy: &[u64], n: usize| {
            let mut rng = Pcg64::new(entropy);
            (0..n).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(raw(&[0, 5], 3), [7_049_166_861_971_720_082, 10_104_186_729_514_042_722, 7_589_694_031_072_859_704]);
        assert_eq!(raw(&[0], 2), [11_749_869_230_777_074_271, 4_976_686_463_289_251_617]);
        // A seed above 2^32 is two words; more than four words are mixed in after the pool.
        assert_eq!(raw(&[(1 << 40) + 3, 7], 2), [7_814_262_574_341_967_586, 17_546_216_688_938_744_036]);
        assert_eq!(raw(&[1, 2, 3, 4, 5, 6], 2), [11_470_276_255_390_519_954, 2_202_564_630_955_117_089]);
    }

    #[test]
    fn permutations_are_numpys() {
        // np.random.default_rng([0, zlib.crc32(b"blues")]).permutation(12)
        assert_eq!(Pcg64::new(&[0, 3_617_361_492]).permutation(12), [11, 0, 9, 7, 1, 5, 4, 3, 6, 2, 8, 10]);
        // np.random.default_rng([3, 2**32 - 1]).permutation(40)
        assert_eq!(
            Pcg64::new(&[3, u64::from(u32::MAX)]).permutation(40),
            [
                12, 26, 24, 28, 36, 16, 21, 39, 20, 31, 3, 9, 33, 35, 8, 7, 23, 22, 15, 25, 32, 37, 17, 19, 5, 18, 29,
                11, 6, 0, 1, 34, 4, 13, 27, 10, 38, 30, 2, 14
            ]
        );
        assert_eq!(Pcg64::new(&[1]).permutation(0), Vec::<usize>::new());
        assert_eq!(Pcg64::new(&[1]).permutation(1), [0]);
    }

    #[test]
    fn intervals_stay_in_range() {
        let mut rng = Pcg64::new(&[9]);
        for max in [1, 2, 5, 63, 64, 1000, u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::MAX] {
            assert!((0..100).all(|_| rng.interval(max) <= max), "{max}");
        }
    }
}
