//! Standardisation and principal component analysis of flattened log-mel segments.
//!
//! Segments have ~16,640 dimensions and there are only a few thousand of them, so PCA never
//! forms the `d × d` covariance. Up to [`GRAM_MAX_SEGMENTS`] segments it eigen-decomposes the
//! `n × n` Gram matrix `X Xᵀ` of the standardised data; past that it runs the same Lanczos
//! iteration on `v ↦ X (Xᵀ v)` without forming anything `n × n`. The principal axes are then
//! `Xᵀ u / ‖Xᵀ u‖` for the leading eigenvectors `u`.

use crate::linalg::{dot_f32, dot_f32_f64, dot_f64, parallel_map, top_eigenpairs, NoConvergence};

/// Above this many segments PCA runs matrix-free instead of forming the Gram matrix
/// (4096² f64 is 128 MiB).
pub(crate) const GRAM_MAX_SEGMENTS: usize = 4096;

/// A feature whose standard deviation is at most this fraction of `max(1, |mean|)` is treated
/// as constant: it is centred but not scaled, so it cannot blow rounding noise up to unit variance.
const CONSTANT_FEATURE: f64 = 1e-6;

/// Eigenvalues below this fraction of the largest are numerically zero: their axes are not
/// kept. The data are f32 and the Gram matrix's partial sums are too, which leaves a noise
/// floor near 1e-7 of the largest eigenvalue; real log-mel spectra stay far above it.
const RANK_TOLERANCE: f64 = 1e-6;

/// Per-feature mean and divisor, fitted on the training segments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Standardiser {
    pub mean: Vec<f32>,
    /// The standard deviation (population, ddof 0), or 1 for a constant feature. Always > 0.
    pub scale: Vec<f32>,
}

impl Standardiser {
    pub(crate) fn fit(rows: &[&[f32]], d: usize) -> Self {
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0f64; d];
        for row in rows {
            for (m, &x) in mean.iter_mut().zip(*row) {
                *m += x as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; d];
        for row in rows {
            for ((v, &m), &x) in var.iter_mut().zip(&mean).zip(*row) {
                let delta = x as f64 - m;
                *v += delta * delta;
            }
        }
        let scale = var
            .iter()
            .zip(&mean)
            .map(|(&v, &m)| {
                let std = (v / n).sqrt();
                if std > CONSTANT_FEATURE * m.abs().max(1.0) {
                    std as f32
                } else {
                    1.0
                }
            })
            .collect();
        Standardiser { mean: mean.iter().map(|&m| m as f32).collect(), scale }
    }

    /// `(x - mean) / scale`, element-wise, into `out`.
    pub(crate) fn apply(&self, x: &[f32], out: &mut [f32]) {
        for (((o, &x), &m), &s) in out.iter_mut().zip(x).zip(&self.mean).zip(&self.scale) {
            *o = (x - m) / s;
        }
    }
}

/// A fitted PCA: the standardiser and the leading principal axes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pca {
    pub standardiser: Standardiser,
    /// `[n_components, d]`, row-major; unit rows, mutually orthogonal.
    pub components: Vec<f32>,
    pub n_components: usize,
    /// Fraction of the total standardised variance along each axis.
    pub explained_variance_ratio: Vec<f64>,
    /// Krylov basis size the eigensolver needed (diagnostics).
    pub krylov_size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PcaError {
    /// Every standardised feature is constant across the segments.
    NoVariance,
    NoConvergence,
}

impl From<NoConvergence> for PcaError {
    fn from(_: NoConvergence) -> Self {
        PcaError::NoConvergence
    }
}

impl Pca {
    /// The PCA coordinates of one raw segment; `scratch` is reused between calls.
    pub(crate) fn project(&self, x: &[f32], scratch: &mut Vec<f32>, out: &mut [f32]) {
        project(&self.standardiser, &self.components, x, scratch, out);
    }
}

/// Standardise `x` and take its dot product with each row of `components`. The one code path
/// for training embeddings and for classification, so a training segment lands exactly on itself.
pub(crate) fn project(
    standardiser: &Standardiser,
    components: &[f32],
    x: &[f32],
    scratch: &mut Vec<f32>,
    out: &mut [f32],
) {
    let d = standardiser.mean.len();
    scratch.resize(d, 0.0);
    standardiser.apply(x, scratch);
    for (o, axis) in out.iter_mut().zip(components.chunks_exact(d.max(1))) {
        *o = dot_f32(scratch, axis);
    }
}

/// Fit a standardiser and up to `max_components` principal axes on `rows` (each `d` long).
/// Fewer axes come back when the data has lower numerical rank. `gram_max` picks the method
/// (see [`GRAM_MAX_SEGMENTS`]); tests lower it to exercise the matrix-free path.
pub(crate) fn fit(
    rows: &[&[f32]],
    d: usize,
    max_components: usize,
    seed: u64,
    gram_max: usize,
) -> Result<Pca, PcaError> {
    let n = rows.len();
    let standardiser = Standardiser::fit(rows, d);
    let mut x = vec![0.0f32; n * d];
    for (row, out) in rows.iter().zip(x.chunks_exact_mut(d.max(1))) {
        standardiser.apply(row, out);
    }
    let total_variance: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
    if !(total_variance > 0.0 && total_variance.is_finite()) {
        return Err(PcaError::NoVariance);
    }
    // Centring leaves at most n - 1 directions with any variance.
    let want = max_components.min(n.saturating_sub(1)).min(d);
    let pairs = if n <= gram_max {
        let gram = gram_matrix(&x, n, d);
        top_eigenpairs(n, want, seed, |v, out| {
            for (o, row) in out.iter_mut().zip(gram.chunks_exact(n)) {
                *o = dot_f64(row, v);
            }
        })?
    } else {
        top_eigenpairs(n, want, seed, |v, out| gram_free_apply(&x, n, d, v, out))?
    };
    let largest = pairs.values.first().copied().unwrap_or(0.0);
    if !(largest.is_finite() && largest > 0.0) {
        return Err(PcaError::NoVariance);
    }
    let kept: Vec<usize> = (0..pairs.values.len()).filter(|&i| pairs.values[i] > RANK_TOLERANCE * largest).collect();
    // Axis i = Xᵀ u_i, normalised; its largest entry made positive so the sign is conventional.
    let axes: Vec<Option<Vec<f32>>> = parallel_map(kept.len(), |j| {
        let u = &pairs.vectors[kept[j]];
        let mut axis = vec![0.0f64; d];
        for (row, &weight) in x.chunks_exact(d).zip(u) {
            for (a, &value) in axis.iter_mut().zip(row) {
                *a += weight * value as f64;
            }
        }
        let norm = dot_f64(&axis, &axis).sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return None;
        }
        let peak = axis.iter().copied().fold(0.0f64, |best, a| if a.abs() > best.abs() { a } else { best });
        let sign = if peak < 0.0 { -1.0 } else { 1.0 };
        Some(axis.iter().map(|a| (sign * a / norm) as f32).collect())
    });
    let mut components = Vec::with_capacity(kept.len() * d);
    let mut explained_variance_ratio = Vec::with_capacity(kept.len());
    for (axis, &i) in axes.into_iter().zip(&kept) {
        let Some(axis) = axis else { break };
        components.extend_from_slice(&axis);
        explained_variance_ratio.push(pairs.values[i] / total_variance);
    }
    let n_components = explained_variance_ratio.len();
    if n_components == 0 {
        return Err(PcaError::NoVariance);
    }
    Ok(Pca { standardiser, components, n_components, explained_variance_ratio, krylov_size: pairs.krylov_size })
}

/// The lower triangle of `X Xᵀ`, computed in tiles (rows × rows × a slice of the features) so
/// each tile's rows stay in cache, then mirrored. Each entry is summed in the same order
/// whatever the thread count.
fn gram_matrix(x: &[f32], n: usize, d: usize) -> Vec<f64> {
    const ROWS: usize = 32;
    const FEATURES: usize = 2048;
    let blocks = n.div_ceil(ROWS);
    // Largest block rows first, so the last job to finish is a small one.
    let block_rows: Vec<Vec<f64>> = parallel_map(blocks, |job| {
        let bi = blocks - 1 - job;
        let (r0, r1) = (bi * ROWS, ((bi + 1) * ROWS).min(n));
        let mut out = vec![0.0f64; (r1 - r0) * r1];
        for bj in 0..=bi {
            let (c0, c1) = (bj * ROWS, ((bj + 1) * ROWS).min(n));
            for k0 in (0..d).step_by(FEATURES) {
                let k1 = (k0 + FEATURES).min(d);
                for i in r0..r1 {
                    let xi = &x[i * d + k0..i * d + k1];
                    for j in c0..c1.min(i + 1) {
                        out[(i - r0) * r1 + j] += dot_f32(xi, &x[j * d + k0..j * d + k1]) as f64;
                    }
                }
            }
        }
        out
    });
    let mut gram = vec![0.0f64; n * n];
    for (job, rows) in block_rows.iter().enumerate() {
        let bi = blocks - 1 - job;
        let (r0, r1) = (bi * ROWS, ((bi + 1) * ROWS).min(n));
        for i in r0..r1 {
            for j in 0..=i {
                let g = rows[(i - r0) * r1 + j];
                gram[i * n + j] = g;
                gram[j * n + i] = g;
            }
        }
    }
    gram
}

/// `out = X (Xᵀ v)` without forming `X Xᵀ`. `Xᵀ v` is split by feature ranges and `X t` by
/// rows, so every element is summed in one fixed order.
fn gram_free_apply(x: &[f32], n: usize, d: usize, v: &[f64], out: &mut [f64]) {
    const FEATURES: usize = 1024;
    const ROWS: usize = 64;
    let ranges = d.div_ceil(FEATURES);
    let t: Vec<f64> = parallel_map(ranges, |r| {
        let (k0, k1) = (r * FEATURES, ((r + 1) * FEATURES).min(d));
        let mut t = vec![0.0f64; k1 - k0];
        for (i, &weight) in v.iter().enumerate().take(n) {
            for (ti, &value) in t.iter_mut().zip(&x[i * d + k0..i * d + k1]) {
                *ti += weight * value as f64;
            }
        }
        t
    })
    .concat();
    let rows: Vec<Vec<f64>> = parallel_map(n.div_ceil(ROWS), |b| {
        (b * ROWS..((b + 1) * ROWS).min(n)).map(|i| dot_f32_f64(&x[i * d..(i + 1) * d], &t)).collect()
    });
    for (o, value) in out.iter_mut().zip(rows.into_iter().flatten()) {
        *o = value;
    }
}

#[cfg(test)]
mod tests {
    use timbre_rng::SplitMix64;

    use super::*;

    fn random_rows(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = SplitMix64::new(seed);
        // A few strong directions plus noise, and one constant feature.
        let directions: Vec<Vec<f64>> = (0..3).map(|_| (0..d).map(|_| rng.signed_unit()).collect()).collect();
        (0..n)
            .map(|_| {
                let weights: Vec<f64> = (0..3).map(|k| rng.signed_unit() * (3 - k) as f64 * 4.0).collect();
                (0..d)
                    .map(|j| {
                        if j == 0 {
                            return -80.0;
                        }
                        let signal: f64 = (0..3).map(|k| weights[k] * directions[k][j]).sum();
                        (signal + 0.3 * rng.signed_unit()) as f32
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn standardiser_centres_scales_and_guards_constant_features() {
        let rows: Vec<Vec<f32>> = vec![vec![-80.0, 1.0, 10.0], vec![-80.0, 3.0, 30.0]];
        let views: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let s = Standardiser::fit(&views, 3);
        assert_eq!(s.mean, vec![-80.0, 2.0, 20.0]);
        assert_eq!(s.scale, vec![1.0, 1.0, 10.0]);
        let mut out = [0.0; 3];
        s.apply(&rows[1], &mut out);
        assert_eq!(out, [0.0, 1.0, 1.0]);
    }

    #[test]
    fn components_are_orthonormal_and_sorted_by_variance() {
        let rows = random_rows(80, 50, 11);
        let views: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let pca = fit(&views, 50, 10, 1, GRAM_MAX_SEGMENTS).expect("fits");
        assert_eq!(pca.n_components, 10);
        for i in 0..10 {
            for j in 0..10 {
                let dot = dot_f32(&pca.components[i * 50..(i + 1) * 50], &pca.components[j * 50..(j + 1) * 50]);
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-4, "axes {i},{j}: {dot}");
            }
        }
        assert!(pca.explained_variance_ratio.windows(2).all(|w| w[0] >= w[1]));
        // Three planted directions carry most of the variance.
        assert!(pca.explained_variance_ratio[..3].iter().sum::<f64>() > 0.8, "{:?}", pca.explained_variance_ratio);
    }

    #[test]
    fn gram_and_matrix_free_paths_agree() {
        let rows = random_rows(70, 40, 5);
        let views: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let gram = fit(&views, 40, 6, 9, GRAM_MAX_SEGMENTS).expect("gram");
        let free = fit(&views, 40, 6, 9, 0).expect("matrix-free");
        assert_eq!(gram.n_components, free.n_components);
        for (a, b) in gram.explained_variance_ratio.iter().zip(&free.explained_variance_ratio) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // The leading axes are well separated, so they agree up to rounding (signs are fixed).
        for (a, b) in gram.components[..3 * 40].iter().zip(&free.components[..3 * 40]) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn gram_matrix_matches_naive_products() {
        let rows = random_rows(45, 3000, 3);
        let x: Vec<f32> = rows.concat();
        let gram = gram_matrix(&x, 45, 3000);
        for i in [0, 7, 31, 32, 44] {
            for j in [0, 5, 32, 44] {
                let naive: f64 = rows[i].iter().zip(&rows[j]).map(|(&a, &b)| a as f64 * b as f64).sum();
                assert!((gram[i * 45 + j] - naive).abs() <= 1e-5 * naive.abs().max(1.0), "{i},{j}");
            }
        }
    }

    #[test]
    fn rank_deficient_data_keeps_only_real_axes() {
        // Every segment on one line through feature space: one axis, however many are asked for.
        let rows: Vec<Vec<f32>> = (0..20).map(|i| (0..8).map(|j| (i as f32) * (j as f32 + 1.0)).collect()).collect();
        let views: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let pca = fit(&views, 8, 5, 1, GRAM_MAX_SEGMENTS).expect("fits");
        assert_eq!(pca.n_components, 1, "{:?}", pca.explained_variance_ratio);
        let same: Vec<Vec<f32>> = vec![vec![1.0, 2.0]; 5];
        let views: Vec<&[f32]> = same.iter().map(Vec::as_slice).collect();
        assert_eq!(fit(&views, 2, 3, 1, GRAM_MAX_SEGMENTS), Err(PcaError::NoVariance));
    }
}
