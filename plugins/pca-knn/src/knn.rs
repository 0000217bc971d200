//! k-nearest-neighbour voting in PCA space (Euclidean).

/// The training set as the vote sees it.
pub(crate) struct Neighbours<'a> {
    /// `[n, stride]`, row-major; the vote compares the first `query.len()` coordinates.
    pub embeddings: &'a [f32],
    pub stride: usize,
    /// Class index of each training row.
    pub labels: &'a [u32],
    pub n_classes: usize,
}

/// Class shares among the `k` nearest training rows of `query`, written into `out`
/// (`n_classes` long, summing to 1). With `weighted`, each neighbour votes `1 / distance`;
/// neighbours at distance zero, if any, then share the whole vote (as scikit-learn does).
/// Ties in distance go to the lower training index, so the result is deterministic.
/// `scratch` is reused between calls.
pub(crate) fn vote(
    neighbours: &Neighbours<'_>,
    query: &[f32],
    k: usize,
    weighted: bool,
    scratch: &mut Vec<(f64, u32)>,
    out: &mut [f32],
) {
    out.iter_mut().for_each(|o| *o = 0.0);
    let dims = query.len();
    scratch.clear();
    for (i, row) in neighbours.embeddings.chunks_exact(neighbours.stride.max(1)).enumerate() {
        let d2: f64 = row[..dims].iter().zip(query).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
        // A NaN distance (non-finite input) sorts last instead of poisoning the order.
        scratch.push((if d2.is_nan() { f64::INFINITY } else { d2 }, i as u32));
    }
    let k = k.min(scratch.len());
    if k == 0 {
        return;
    }
    let order = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    if k < scratch.len() {
        scratch.select_nth_unstable_by(k - 1, order);
    }
    let nearest = &mut scratch[..k];
    nearest.sort_unstable_by(order);
    let mut votes = vec![0.0f64; neighbours.n_classes];
    let exact = weighted && nearest.iter().any(|&(d2, _)| d2 == 0.0);
    for &(d2, i) in nearest.iter() {
        let weight = match (weighted, exact) {
            (false, _) => 1.0,
            (true, true) => f64::from(u8::from(d2 == 0.0)),
            (true, false) => 1.0 / d2.sqrt(),
        };
        if let Some(v) = neighbours.labels.get(i as usize).and_then(|&c| votes.get_mut(c as usize)) {
            *v += weight;
        }
    }
    let total: f64 = votes.iter().sum();
    if total > 0.0 && total.is_finite() {
        for (o, v) in out.iter_mut().zip(&votes) {
            *o = (v / total) as f32;
        }
    } else {
        // Every neighbour infinitely far (non-finite input): no evidence, so a uniform answer.
        let uniform = 1.0 / neighbours.n_classes.max(1) as f32;
        out.iter_mut().for_each(|o| *o = uniform);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> (Vec<f32>, Vec<u32>) {
        // 1-D points 0..6; the first three are class 0, the rest class 1.
        ((0..6).map(|i| i as f32).collect(), vec![0, 0, 0, 1, 1, 1])
    }

    #[test]
    fn uniform_vote_counts_neighbours() {
        let (emb, labels) = line();
        let nb = Neighbours { embeddings: &emb, stride: 1, labels: &labels, n_classes: 2 };
        let mut out = [0.0; 2];
        vote(&nb, &[0.9], 3, false, &mut Vec::new(), &mut out);
        assert_eq!(out, [1.0, 0.0]);
        vote(&nb, &[2.6], 4, false, &mut Vec::new(), &mut out);
        assert_eq!(out, [0.5, 0.5]);
        // k past the training set uses everything.
        vote(&nb, &[2.6], 100, false, &mut Vec::new(), &mut out);
        assert_eq!(out, [0.5, 0.5]);
    }

    #[test]
    fn weighted_vote_prefers_closer_neighbours_and_exact_matches() {
        let (emb, labels) = line();
        let nb = Neighbours { embeddings: &emb, stride: 1, labels: &labels, n_classes: 2 };
        let mut out = [0.0; 2];
        vote(&nb, &[2.9], 2, true, &mut Vec::new(), &mut out);
        // Neighbours 3 (d 0.1, class 1) and 2 (d 0.9, class 0).
        assert!((out[1] - 0.9).abs() < 1e-5 && (out[0] - 0.1).abs() < 1e-5, "{out:?}");
        vote(&nb, &[2.0], 3, true, &mut Vec::new(), &mut out);
        assert_eq!(out, [1.0, 0.0]);
    }

    #[test]
    fn ties_and_nan_are_deterministic() {
        let (emb, labels) = line();
        let nb = Neighbours { embeddings: &emb, stride: 1, labels: &labels, n_classes: 2 };
        let mut out = [0.0; 2];
        // 2 and 3 are equally far from 2.5: the lower index (class 0) wins the single vote.
        vote(&nb, &[2.5], 1, false, &mut Vec::new(), &mut out);
        assert_eq!(out, [1.0, 0.0]);
        vote(&nb, &[f32::NAN], 3, true, &mut Vec::new(), &mut out);
        assert_eq!(out, [0.5, 0.5]);
    }
}
