//! The arithmetic every backend agrees on: normalisation, the recommendation strategies'
//! query vectors and scores (Qdrant's definitions), and the dot-product kernel.

use super::Strategy;

/// L2-normalise, as Qdrant does for cosine collections: vectors of (near) unit length and
/// the zero vector are left as they are.
pub(crate) fn normalise(v: &mut [f32]) {
    let length = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if length < f32::EPSILON || (length - 1.0).abs() <= 1.0e-6 {
        return;
    }
    for x in v {
        *x /= length;
    }
}

pub(crate) fn normalised(v: &[f32]) -> Vec<f32> {
    let mut v = v.to_vec();
    normalise(&mut v);
    v
}

/// The query vector of [`Strategy::AverageVector`]: `avg(p)` or `avg(p) + (avg(p) − avg(n))`,
/// over normalised examples, normalised.
pub(crate) fn average_query(positive: &[Vec<f32>], negative: &[Vec<f32>]) -> Vec<f32> {
    let average = |vectors: &[Vec<f32>]| {
        let mut sum = vec![0.0f32; vectors[0].len()];
        for v in vectors {
            for (s, x) in sum.iter_mut().zip(normalised(v)) {
                *s += x;
            }
        }
        for s in &mut sum {
            *s /= vectors.len() as f32;
        }
        sum
    };
    let mut query = average(positive);
    if !negative.is_empty() {
        let neg = average(negative);
        for (q, n) in query.iter_mut().zip(neg) {
            *q = *q + *q - n;
        }
    }
    normalise(&mut query);
    query
}

/// Qdrant's `scaled_fast_sigmoid`: maps a similarity to (0, 1), keeping its order.
pub(crate) fn scaled_fast_sigmoid(x: f32) -> f32 {
    0.5 * (x / (1.0 + x.abs()) + 1.0)
}

/// The [`Strategy::BestScore`] score from the best similarities to a positive and to a negative
/// (`f32::NEG_INFINITY` when there are no negatives).
#[inline]
pub(crate) fn best_score(max_positive: f32, max_negative: f32) -> f32 {
    if max_positive > max_negative {
        scaled_fast_sigmoid(max_positive)
    } else {
        -scaled_fast_sigmoid(max_negative)
    }
}

/// The cosine similarity a [`Strategy::BestScore`] score came from: to the nearest positive
/// example when the score is positive, to the nearest negative one when it is negative.
pub fn best_score_similarity(score: f32) -> f32 {
    let y = 2.0 * score.abs() - 1.0; // = x / (1 + |x|)
    y / (1.0 - y.abs())
}

/// What a query scores rows against, with its examples normalised.
#[derive(Debug, Clone)]
pub(crate) enum Scorer {
    Average { query: Vec<f32> },
    Best { positive: Vec<Vec<f32>>, negative: Vec<Vec<f32>> },
}

impl Scorer {
    pub fn new(strategy: Strategy, positive: &[Vec<f32>], negative: &[Vec<f32>]) -> Scorer {
        match strategy {
            Strategy::AverageVector => Scorer::Average { query: average_query(positive, negative) },
            Strategy::BestScore => Scorer::Best {
                positive: positive.iter().map(|v| normalised(v)).collect(),
                negative: negative.iter().map(|v| normalised(v)).collect(),
            },
        }
    }

    /// The vectors an approximate index should look near.
    pub fn probes(&self) -> Vec<&[f32]> {
        match self {
            Scorer::Average { query } => vec![query],
            Scorer::Best { positive, .. } => positive.iter().map(Vec::as_slice).collect(),
        }
    }

    /// Scores of `rows` (`out.len()` rows of `dim` floats, contiguous) into `out`.
    #[inline]
    pub fn score_rows(&self, rows: &[f32], dim: usize, out: &mut [f32]) {
        match self {
            Scorer::Average { query } => dots(query, rows, dim, out),
            Scorer::Best { positive, negative } => {
                // Example by example over a few rows at a time, with the fast kernel.
                const ROWS: usize = 64;
                let mut p = [0.0f32; ROWS];
                let mut n = [0.0f32; ROWS];
                let mut s = [0.0f32; ROWS];
                for (rows, out) in rows.chunks(ROWS * dim).zip(out.chunks_mut(ROWS)) {
                    let k = out.len();
                    p[..k].fill(f32::NEG_INFINITY);
                    n[..k].fill(f32::NEG_INFINITY);
                    for (examples, best) in [(positive, &mut p), (negative, &mut n)] {
                        for e in examples {
                            dots(e, rows, dim, &mut s[..k]);
                            for (b, x) in best[..k].iter_mut().zip(&s[..k]) {
                                *b = b.max(*x);
                            }
                        }
                    }
                    for i in 0..k {
                        out[i] = best_score(p[i], n[i]);
                    }
                }
            }
        }
    }
}

/// Dot product in `N` independent accumulators, which the compiler turns into SIMD
/// multiply-adds on any x86-64 or aarch64 target (fused ones where `FMA` and the CPU has them).
#[inline(always)]
fn dot_lanes<const N: usize, const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; N];
    let mut ca = a.chunks_exact(N);
    let mut cb = b.chunks_exact(N);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..N {
            acc[i] = if FMA { x[i].mul_add(y[i], acc[i]) } else { acc[i] + x[i] * y[i] };
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    let mut width = N / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0] + tail
}

/// Dot product (portable SIMD through auto-vectorisation).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes::<16, false>(a, b)
}

/// `out[i] = dot(query, row i)` for contiguous rows of `dim` floats: the search's inner loop.
/// On x86-64 CPUs with AVX2 and FMA (checked once, at run time) it runs a build of the same
/// code for them, with 8-wide fused multiply-adds.
#[inline]
pub(crate) fn dots(query: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        unsafe { dots_avx2_fma(query, rows, dim, out) };
        return;
    }
    for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *o = dot(query, row);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dots_avx2_fma(query: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *o = dot_lanes::<32, true>(query, row);
    }
}

/// A small, fast 64-bit hash for fingerprints (not for anything adversarial).
pub(crate) struct Hasher(u64);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher(0x243f_6a88_85a3_08d3)
    }

    #[inline]
    pub fn u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    pub fn i64(&mut self, word: i64) {
        self.u64(word as u64);
    }

    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        for chunk in s.as_bytes().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.u64(u64::from_le_bytes(word));
        }
    }

    /// SplitMix64's finaliser, so every input bit reaches every output bit.
    pub fn finish(&self) -> u64 {
        timbre_rng::mix(self.0)
    }
}

#[cfg(test)]
mod tests {
    use timbre_rng::SplitMix64 as Rng;

    use super::*;

    #[test]
    fn dot_matches_a_plain_sum_for_every_length() {
        let mut rng = Rng::new(1);
        for n in 0..70 {
            let a: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-4, "n = {n}");
        }
    }

    #[test]
    fn the_dots_kernel_matches_a_plain_sum() {
        let mut rng = Rng::new(2);
        for dim in [1, 5, 23, 32, 64, 100, 128] {
            let rows: Vec<f32> = (0..dim * 9).map(|_| rng.normal()).collect();
            let query: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            let mut out = vec![0.0; 9];
            dots(&query, &rows, dim, &mut out);
            for (row, o) in rows.chunks_exact(dim).zip(&out) {
                let plain: f64 = row.iter().zip(&query).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
                assert!((f64::from(*o) - plain).abs() < 1e-4, "dim {dim}");
            }
        }
    }

    #[test]
    fn the_average_vector_follows_qdrant() {
        // avg(p) = (0.5, 0.5); with n = (0, 1): (0.5, 0.5) + ((0.5, 0.5) - (0, 1)) = (1, 0).
        let q = average_query(&[vec![1.0, 0.0], vec![0.0, 1.0]], &[vec![0.0, 1.0]]);
        assert_eq!(q, vec![1.0, 0.0]);
        let q = average_query(&[vec![2.0, 0.0], vec![0.0, 3.0]], &[]);
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((q[0] - h).abs() < 1e-6 && (q[1] - h).abs() < 1e-6, "{q:?}");
    }

    #[test]
    fn best_score_prefers_positives_and_inverts() {
        assert!(best_score(-0.9, -0.95) > best_score(0.9, 0.95));
        assert!(best_score(0.2, 0.1) < best_score(0.3, 0.1));
        assert!(best_score(0.1, 0.3) > best_score(0.1, 0.5), "closer to a negative ranks lower");
        for x in [-1.0f32, -0.3, 0.0, 0.42, 1.0] {
            assert!((best_score_similarity(best_score(x, f32::NEG_INFINITY)) - x).abs() < 1e-6);
            assert!((best_score_similarity(best_score(-2.0, x)) - x).abs() < 1e-6);
        }
    }

    #[test]
    fn fingerprints_see_every_field() {
        let a = {
            let mut h = Hasher::new();
            h.str("ab");
            h.str("c");
            h.finish()
        };
        let b = {
            let mut h = Hasher::new();
            h.str("a");
            h.str("bc");
            h.finish()
        };
        assert_ne!(a, b);
    }
}
