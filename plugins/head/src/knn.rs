//! k nearest neighbours by cosine similarity between standardised embeddings.

/// Scales `row` to unit length (a zero row stays zero and matches nothing).
pub fn unit(row: &mut [f64]) {
    let norm = row.iter().map(|a| a * a).sum::<f64>().sqrt();
    if norm > 0.0 {
        row.iter_mut().for_each(|a| *a /= norm);
    }
}

/// The vote shares of the `k` most similar `points` (unit rows of `query.len()`), whose labels
/// are `labels`, into `out` (one share per class). Ties in similarity go to the earlier point,
/// so the result does not depend on sort stability.
pub fn vote(points: &[f64], labels: &[usize], k: usize, query: &[f64], out: &mut [f64]) {
    let dim = query.len();
    let mut scored: Vec<(f64, usize)> = points
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, p)| (p.iter().zip(query).map(|(a, b)| a * b).sum::<f64>(), i))
        .collect();
    let k = k.min(scored.len());
    out.iter_mut().for_each(|o| *o = 0.0);
    if k == 0 {
        return;
    }
    let by_similarity = |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    scored.select_nth_unstable_by(k - 1, by_similarity);
    for &(_, i) in &scored[..k] {
        out[labels[i]] += 1.0 / k as f64;
    }
}
