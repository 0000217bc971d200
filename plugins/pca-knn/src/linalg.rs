//! The numerical kernels: dot products, a symmetric tridiagonal eigensolver and a Lanczos
//! iteration for the largest eigenpairs of a symmetric positive semi-definite operator.
//!
//! Everything here is deterministic: each output element is computed by one thread in a fixed
//! order, so the results do not depend on how many threads ran.

use std::sync::atomic::{AtomicUsize, Ordering};

use timbre_rng::SplitMix64;

/// `Σ a[i]·b[i]` in f32 with sixteen independent accumulators (vectorises well, and keeps the
/// rounding error of a 16,640-term sum near that of a 1,040-term one).
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ a[i]·b[i]` in f64 with eight accumulators.
pub(crate) fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    const LANES: usize = 8;
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f64; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// `Σ a[i]·b[i]` with `a` in f32, accumulated in f64.
pub(crate) fn dot_f32_f64(a: &[f32], b: &[f64]) -> f64 {
    const LANES: usize = 8;
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f64; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ac.remainder().iter().zip(bc.remainder()).map(|(&x, y)| x as f64 * y).sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            acc[l] += x[l] as f64 * y[l];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// `y += a·x`.
pub(crate) fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Threads to use for training: the machine's parallelism, at most eight.
pub(crate) fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8)
}

/// `(0..count).map(f)`, computed on up to [`worker_threads`] scoped threads that take the
/// indices in order. The result is the same as the sequential map, whatever the thread count.
pub(crate) fn parallel_map<T: Send>(count: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = worker_threads().min(count);
    if threads <= 1 {
        return (0..count).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut pieces: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break done;
                        }
                        done.push((i, f(i)));
                    }
                })
            })
            .collect();
        // A worker only panics if `f` does; re-raise it here rather than hide it.
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    pieces.sort_unstable_by_key(|(i, _)| *i);
    pieces.into_iter().map(|(_, t)| t).collect()
}

/// The eigensolver did not converge (never expected for a finite symmetric matrix).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NoConvergence;

/// Eigen-decomposition of the symmetric tridiagonal matrix with diagonal `diag` and
/// off-diagonal `off` (`off[i]` couples `i` and `i + 1`; `off.len() == diag.len() - 1`),
/// by the implicit QL method (EISPACK `tql2`, as in JAMA).
///
/// Returns the eigenvalues in descending order and the matching eigenvectors, column-major:
/// vector `j` is `vectors[j * n .. (j + 1) * n]`.
pub(crate) fn tridiagonal_eigen(diag: &[f64], off: &[f64]) -> Result<(Vec<f64>, Vec<f64>), NoConvergence> {
    let n = diag.len();
    if n == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    debug_assert_eq!(off.len() + 1, n);
    let mut d = diag.to_vec();
    let mut e = off.to_vec();
    e.push(0.0);
    // z[col * n + row]: columns rotate together, and each column is contiguous.
    let mut z = vec![0.0f64; n * n];
    for i in 0..n {
        z[i * n + i] = 1.0;
    }
    let eps = f64::EPSILON;
    let mut f = 0.0f64;
    let mut tst1 = 0.0f64;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            let mut iterations = 0;
            loop {
                iterations += 1;
                if iterations > 60 {
                    return Err(NoConvergence);
                }
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in d.iter_mut().skip(l + 2) {
                    *di -= h;
                }
                f += h;

                p = d[m];
                let mut c = 1.0f64;
                let mut c2 = c;
                let mut c3 = c;
                let el1 = e[l + 1];
                let mut s = 0.0f64;
                let mut s2 = 0.0f64;
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (left, right) = z.split_at_mut((i + 1) * n);
                    let zi = &mut left[i * n..];
                    let zi1 = &mut right[..n];
                    for (a, b) in zi.iter_mut().zip(zi1.iter_mut()) {
                        let hb = *b;
                        *b = s * *a + c * hb;
                        *a = c * *a - s * hb;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    if d.iter().any(|x| !x.is_finite()) {
        return Err(NoConvergence);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| d[b].total_cmp(&d[a]).then(a.cmp(&b)));
    let values = order.iter().map(|&j| d[j]).collect();
    let mut vectors = Vec::with_capacity(n * n);
    for &j in &order {
        vectors.extend_from_slice(&z[j * n..(j + 1) * n]);
    }
    Ok((values, vectors))
}

/// The largest eigenpairs of a symmetric operator, in descending order of eigenvalue.
#[derive(Debug, Clone)]
pub(crate) struct EigenPairs {
    pub values: Vec<f64>,
    /// Unit vectors, orthogonal to each other.
    pub vectors: Vec<Vec<f64>>,
    /// Size of the Krylov basis it took.
    pub krylov_size: usize,
}

/// Relative residual `‖A y − θ y‖ / θ_max` under which a Ritz pair counts as converged: each
/// pair is then exact for a matrix within 1e-5 of `A` (relative), far below the noise in f32
/// log-mel data. Tighter costs Krylov steps (each a pass over the data past the Gram limit) and
/// changes neither the captured variance nor the neighbours in practice.
const RESIDUAL_TOLERANCE: f64 = 1e-5;

/// The `want` largest eigenpairs of the symmetric `n × n` operator `apply` (`out = A v`), by
/// Lanczos with full reorthogonalisation. The start vector comes from `seed`, so the result is
/// reproducible. If the Krylov space becomes invariant before `want` pairs are found, the
/// iteration restarts in its orthogonal complement, so up to `n` pairs can always be had.
pub(crate) fn top_eigenpairs(
    n: usize,
    want: usize,
    seed: u64,
    mut apply: impl FnMut(&[f64], &mut [f64]),
) -> Result<EigenPairs, NoConvergence> {
    let want = want.min(n);
    if want == 0 {
        return Ok(EigenPairs { values: Vec::new(), vectors: Vec::new(), krylov_size: 0 });
    }
    let mut rng = SplitMix64::new(seed);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut alpha: Vec<f64> = Vec::new();
    let mut beta: Vec<f64> = Vec::new();
    let Some(mut q) = random_unit_orthogonal(&basis, n, &mut rng) else {
        return Ok(EigenPairs { values: Vec::new(), vectors: Vec::new(), krylov_size: 0 });
    };
    let mut w = vec![0.0f64; n];
    let mut scale = 0.0f64;
    let mut next_check = (2 * want + 10).min(n);
    // Where the current Krylov block starts: each restart after a breakdown begins a new one.
    let mut block_start = 0;
    loop {
        apply(&q, &mut w);
        let a = dot_f64(&q, &w);
        axpy(-a, &q, &mut w);
        if basis.len() > block_start {
            if let (Some(previous), Some(&b)) = (basis.last(), beta.last()) {
                axpy(-b, previous, &mut w);
            }
        }
        basis.push(q);
        alpha.push(a);
        // Twice is enough (Kahan–Parlett): the basis stays orthogonal to working precision.
        for _ in 0..2 {
            for v in &basis {
                let c = dot_f64(v, &w);
                axpy(-c, v, &mut w);
            }
        }
        let b = dot_f64(&w, &w).sqrt();
        scale = scale.max(a.abs() + b + beta.last().map_or(0.0, |x| x.abs()));
        let k = basis.len();
        let breakdown = b <= 1e-12 * scale || !b.is_finite();
        if k == n || k >= next_check || breakdown {
            let (theta, s) = tridiagonal_eigen(&alpha, &beta)?;
            if k == n {
                return Ok(ritz_pairs(&basis, &theta, &s, want));
            }
            let top = theta.first().map_or(0.0, |t| t.abs()).max(f64::MIN_POSITIVE);
            if breakdown {
                // The space so far is invariant, so its Ritz pairs are exact; but one Krylov space
                // holds one vector per distinct eigenvalue, and a start vector may miss part of
                // the spectrum. A finished block from a restart that found nothing above the
                // wanted pairs shows that the rest of the space has nothing to add.
                if k >= want && block_start > 0 {
                    let (block_values, _) = tridiagonal_eigen(&alpha[block_start..], &beta[block_start..k - 1])?;
                    let block_top = block_values.first().copied().unwrap_or(0.0);
                    if block_top <= theta[want - 1] + 1e-9 * top {
                        return Ok(ritz_pairs(&basis, &theta, &s, want));
                    }
                }
            } else if k >= want && (0..want).all(|i| (b * s[i * k + k - 1]).abs() <= RESIDUAL_TOLERANCE * top) {
                return Ok(ritz_pairs(&basis, &theta, &s, want));
            }
            next_check = (k + (k / 8).max(10)).min(n);
        }
        if breakdown {
            match random_unit_orthogonal(&basis, n, &mut rng) {
                Some(v) => {
                    q = v;
                    beta.push(0.0);
                    block_start = k;
                }
                None => {
                    let (theta, s) = tridiagonal_eigen(&alpha, &beta)?;
                    return Ok(ritz_pairs(&basis, &theta, &s, want));
                }
            }
        } else {
            q = w.iter().map(|x| x / b).collect();
            beta.push(b);
        }
    }
}

/// The first `want` Ritz pairs `(θ_i, Q s_i)`.
fn ritz_pairs(basis: &[Vec<f64>], theta: &[f64], s: &[f64], want: usize) -> EigenPairs {
    let k = basis.len();
    let n = basis.first().map_or(0, Vec::len);
    let want = want.min(k);
    let mut vectors = Vec::with_capacity(want);
    for i in 0..want {
        let mut y = vec![0.0f64; n];
        for (j, v) in basis.iter().enumerate() {
            axpy(s[i * k + j], v, &mut y);
        }
        let norm = dot_f64(&y, &y).sqrt();
        if norm > 0.0 {
            y.iter_mut().for_each(|x| *x /= norm);
        }
        vectors.push(y);
    }
    EigenPairs { values: theta[..want].to_vec(), vectors, krylov_size: k }
}

/// A random unit vector orthogonal to `basis`, or `None` if `basis` already spans everything.
fn random_unit_orthogonal(basis: &[Vec<f64>], n: usize, rng: &mut SplitMix64) -> Option<Vec<f64>> {
    if basis.len() >= n {
        return None;
    }
    for _attempt in 0..4 {
        let mut v: Vec<f64> = (0..n).map(|_| rng.signed_unit()).collect();
        let initial = dot_f64(&v, &v).sqrt();
        for _ in 0..2 {
            for b in basis {
                let c = dot_f64(b, &v);
                axpy(-c, b, &mut v);
            }
        }
        let norm = dot_f64(&v, &v).sqrt();
        if norm > 1e-8 * initial {
            v.iter_mut().for_each(|x| *x /= norm);
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_apply(matrix: &[f64], n: usize) -> impl FnMut(&[f64], &mut [f64]) + '_ {
        move |v, out| {
            for i in 0..n {
                out[i] = dot_f64(&matrix[i * n..(i + 1) * n], v);
            }
        }
    }

    #[test]
    fn dots_match_the_naive_sum() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.25).collect();
        let naive: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        assert!((dot_f32(&a, &b) as f64 - naive).abs() < 1e-3);
        let b64: Vec<f64> = b.iter().map(|&x| x as f64).collect();
        assert!((dot_f32_f64(&a, &b64) - naive).abs() < 1e-9);
        let a64: Vec<f64> = a.iter().map(|&x| x as f64).collect();
        assert!((dot_f64(&a64, &b64) - naive).abs() < 1e-9);
    }

    #[test]
    fn tridiagonal_eigen_solves_a_known_matrix() {
        // The second-difference matrix has eigenvalues 2 - 2 cos(jπ/(n+1)).
        let n = 12;
        let (values, vectors) = tridiagonal_eigen(&vec![2.0; n], &vec![-1.0; n - 1]).expect("converges");
        for (j, value) in values.iter().enumerate() {
            let expected = 2.0 - 2.0 * ((n - j) as f64 * std::f64::consts::PI / (n + 1) as f64).cos();
            assert!((value - expected).abs() < 1e-12, "{value} vs {expected}");
            let v = &vectors[j * n..(j + 1) * n];
            // T v = λ v
            for i in 0..n {
                let mut tv = 2.0 * v[i];
                if i > 0 {
                    tv -= v[i - 1];
                }
                if i + 1 < n {
                    tv -= v[i + 1];
                }
                assert!((tv - value * v[i]).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn lanczos_finds_the_top_eigenpairs_of_a_dense_matrix() {
        // A = B Bᵀ for a pseudo-random B: symmetric positive semi-definite, rank 30 of 60.
        let (n, r) = (60, 30);
        let mut rng = SplitMix64::new(7);
        let b: Vec<f64> = (0..n * r).map(|_| rng.signed_unit()).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = dot_f64(&b[i * r..(i + 1) * r], &b[j * r..(j + 1) * r]);
            }
        }
        let full = top_eigenpairs(n, n, 1, dense_apply(&a, n)).expect("full");
        let top = top_eigenpairs(n, 5, 2, dense_apply(&a, n)).expect("top");
        for i in 0..5 {
            assert!((full.values[i] - top.values[i]).abs() < 1e-8 * full.values[0]);
            let mut av = vec![0.0; n];
            dense_apply(&a, n)(&top.vectors[i], &mut av);
            let residual: f64 = av.iter().zip(&top.vectors[i]).map(|(x, v)| (x - top.values[i] * v).powi(2)).sum();
            assert!(residual.sqrt() <= RESIDUAL_TOLERANCE * full.values[0]);
        }
        // Trace is preserved by the full decomposition; eigenvalues past the rank are ~0.
        let trace: f64 = (0..n).map(|i| a[i * n + i]).sum();
        assert!((full.values.iter().sum::<f64>() - trace).abs() < 1e-8 * trace);
        assert!(full.values[r..].iter().all(|v| v.abs() < 1e-8 * full.values[0]));
    }

    #[test]
    fn lanczos_restarts_after_an_invariant_subspace() {
        // Diagonal with a repeated eigenvalue: a single Krylov space cannot hold both copies.
        let n = 6;
        let diag = [5.0, 5.0, 3.0, 0.0, 0.0, 1.0];
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            a[i * n + i] = diag[i];
        }
        let pairs = top_eigenpairs(n, 4, 3, dense_apply(&a, n)).expect("converges");
        let values: Vec<f64> = pairs.values.iter().map(|v| (v * 1e9).round() / 1e9).collect();
        assert_eq!(values, vec![5.0, 5.0, 3.0, 1.0]);
    }

    #[test]
    fn parallel_map_keeps_order() {
        assert_eq!(parallel_map(100, |i| i * i), (0..100).map(|i| i * i).collect::<Vec<_>>());
    }
}
