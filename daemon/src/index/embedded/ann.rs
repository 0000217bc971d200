//! The approximate index: IVF (inverted file). Spherical k-means on a sample of the space
//! gives `nlist ≈ √n` unit centroids; each row lives in the list of its nearest centroid. A
//! query scans the lists whose centroids are nearest its probe vectors, `nprobe` of them,
//! and probes more (doubling) while fewer rows than an unfiltered probe would see pass its
//! filter, so a selective filter widens the search instead of losing results; in the limit it
//! scans every list, which is exact.
//!
//! The space is (re)trained when it first grows past `exact_limit`, and again whenever it has
//! doubled or halved since; below `exact_limit / 2` it goes back to one list (exact search).

use timbre_rng::SplitMix64 as Rng;

use super::search::{parallel, scan, threads_for, RowFilter, TopK};
use super::space::Space;
use crate::index::scoring::{dots, Scorer};

/// k-means iterations on the sample.
const ITERATIONS: usize = 8;
/// Sample rows per centroid.
const SAMPLE_PER_LIST: usize = 32;
/// Rows per unit of parallel assignment work.
const ASSIGN_CHUNK: usize = 2048;
/// Fixed, so that training is reproducible.
const SEED: u64 = 0x7113_b1e5_eed5_0001;

/// Lists for a space of `n` rows.
pub(crate) fn nlist_for(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).clamp(16, 4096).min(n.max(1))
}

/// Retrain, drop or keep the space's approximate index after it changed size.
pub(crate) fn maintain(space: &mut Space, exact_limit: usize, threads: usize) {
    let n = space.len();
    if exact_limit == 0 || n <= exact_limit {
        if space.is_trained() && (exact_limit == 0 || n <= exact_limit / 2) {
            let assign = vec![0u32; n];
            space.regroup(Vec::new(), &assign, 0);
        }
        return;
    }
    // `trained_len` comes from the snapshot: any value, so no overflow.
    if !space.is_trained() || n > space.trained_len.saturating_mul(2) || n < space.trained_len / 2 {
        train(space, threads);
    }
}

/// Train centroids on a sample of the space and regroup every row by its nearest centroid.
pub(crate) fn train(space: &mut Space, threads: usize) {
    let n = space.len();
    let dim = space.dim;
    if n < 2 {
        return;
    }
    let nlist = nlist_for(n);
    let started = std::time::Instant::now();

    // Flat positions of every row, in list order, and a random sample of them.
    let positions: Vec<(u32, u32)> = space
        .lists
        .iter()
        .enumerate()
        .flat_map(|(l, list)| (0..list.len()).map(move |r| (l as u32, r as u32)))
        .collect();
    let mut rng = Rng::new(SEED ^ n as u64);
    let sample_n = (nlist * SAMPLE_PER_LIST).min(n);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in 0..sample_n {
        let j = i + rng.below(n - i);
        order.swap(i, j);
    }
    let mut sample = Vec::with_capacity(sample_n * dim);
    for &i in &order[..sample_n] {
        let (l, r) = positions[i as usize];
        sample.extend_from_slice(space.vector(l as usize, r as usize));
    }

    // Spherical k-means: start from the first `nlist` sample rows.
    let mut centroids = sample[..nlist * dim].to_vec();
    for _ in 0..ITERATIONS {
        let assign = assign_rows(&sample, dim, &centroids, threads);
        let mut sums = vec![0.0f32; nlist * dim];
        let mut counts = vec![0usize; nlist];
        for (row, &a) in sample.chunks_exact(dim).zip(&assign) {
            counts[a as usize] += 1;
            for (s, x) in sums[a as usize * dim..(a as usize + 1) * dim].iter_mut().zip(row) {
                *s += x;
            }
        }
        for (c, count) in counts.iter().enumerate() {
            let centroid = &mut sums[c * dim..(c + 1) * dim];
            if *count == 0 {
                // An empty list restarts from a random sample row.
                let r = rng.below(sample_n);
                centroid.copy_from_slice(&sample[r * dim..(r + 1) * dim]);
            }
            let norm = centroid.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                centroid.iter_mut().for_each(|x| *x /= norm);
            }
        }
        centroids = sums;
    }

    // Every row to its nearest centroid.
    let mut all = Vec::with_capacity(n);
    for list in &space.lists {
        all.extend(assign_rows(&list.vectors, dim, &centroids, threads));
    }
    space.regroup(centroids, &all, n);
    tracing::debug!(
        rows = n,
        lists = nlist,
        seconds = started.elapsed().as_secs_f64(),
        "trained the approximate index"
    );
}

/// The nearest centroid of each row of `rows`.
fn assign_rows(rows: &[f32], dim: usize, centroids: &[f32], threads: usize) -> Vec<u32> {
    let n = rows.len() / dim;
    let nlist = centroids.len() / dim;
    let units = n.div_ceil(ASSIGN_CHUNK);
    // Assignment costs `nlist` dot products per row: worth threads far sooner than a search.
    let threads = threads.min(units).max(1);
    let parts = parallel(
        threads,
        units,
        || (Vec::new(), vec![0.0f32; nlist]),
        |(done, scores): &mut (Vec<(usize, Vec<u32>)>, Vec<f32>), u| {
            let start = u * ASSIGN_CHUNK;
            let end = (start + ASSIGN_CHUNK).min(n);
            let mut out = Vec::with_capacity(end - start);
            for row in rows[start * dim..end * dim].chunks_exact(dim) {
                dots(row, centroids, dim, scores);
                let mut best = (f32::NEG_INFINITY, 0u32);
                for (c, &s) in scores.iter().enumerate() {
                    if s > best.0 {
                        best = (s, c as u32);
                    }
                }
                out.push(best.1);
            }
            done.push((u, out));
        },
    );
    let mut chunks: Vec<(usize, Vec<u32>)> = parts.into_iter().flat_map(|(done, _)| done).collect();
    chunks.sort_by_key(|(u, _)| *u);
    chunks.into_iter().flat_map(|(_, a)| a).collect()
}

/// Lists in the order to probe them: by the best similarity of their centroid to any probe.
fn probe_order(space: &Space, probes: &[&[f32]]) -> Vec<usize> {
    let nlist = space.lists.len();
    let mut best = vec![f32::NEG_INFINITY; nlist];
    let mut scores = vec![0.0f32; nlist];
    for probe in probes {
        dots(probe, &space.centroids, space.dim, &mut scores);
        for (b, s) in best.iter_mut().zip(&scores) {
            *b = b.max(*s);
        }
    }
    let mut order: Vec<usize> = (0..nlist).collect();
    order.sort_by(|&a, &b| best[b].total_cmp(&best[a]).then(a.cmp(&b)));
    order
}

/// Search a trained space through its lists; see the module documentation.
pub(crate) fn search(
    space: &Space,
    scorer: &Scorer,
    filter: &RowFilter,
    limit: usize,
    max_threads: usize,
    nprobe: usize,
) -> (TopK, usize) {
    let probes = scorer.probes();
    let order = probe_order(space, &probes);
    let nlist = order.len();
    let average_list = space.len() as f64 / nlist as f64;
    // Rows an unfiltered probe would see (a little less: lists differ in size).
    let target = ((nprobe as f64 * average_list * 0.75) as usize).max(limit);
    let mut want = (nprobe.max(1) * probes.len()).min(nlist);
    let mut probed = 0;
    let mut top = TopK::new(limit);
    let mut passed = 0;
    loop {
        let lists = &order[probed..want];
        let rows: usize = lists.iter().map(|&l| space.lists[l].len()).sum();
        let (t, p) = scan(space, lists, scorer, filter, limit, threads_for(rows, max_threads));
        top.merge(t);
        passed += p;
        probed = want;
        if probed == nlist || passed >= target {
            return (top, passed);
        }
        want = (want * 2).min(nlist);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::embedded::space::{RowAttrs, NO_KEY};
    use crate::index::scoring::normalise;

    #[test]
    fn training_groups_clustered_rows_and_keeps_them_all() {
        let dim = 8;
        let mut rng = Rng::new(3);
        let mut space = Space::new(dim);
        let attrs = RowAttrs { genre: 0, label: 0, artist: 0, album: 0, duration_s: 0.0, bpm: f64::NAN, key: NO_KEY };
        for id in 0..2000i64 {
            let axis = (id % 4) as usize;
            let mut v: Vec<f32> = (0..dim).map(|_| rng.normal() * 0.05).collect();
            v[axis] += 1.0;
            normalise(&mut v);
            space.insert(id, &v, attrs);
        }
        maintain(&mut space, 1000, 2);
        assert!(space.is_trained());
        assert_eq!(space.lists.len(), nlist_for(2000));
        assert_eq!(space.len(), 2000);
        // Rows of one cluster share lists with no other cluster.
        for list in &space.lists {
            let axes: std::collections::HashSet<i64> = list.ids.iter().map(|id| id % 4).collect();
            assert!(axes.len() <= 1, "{axes:?}");
        }
        // Shrinking far below the limit goes back to one list.
        for id in 0..1600 {
            space.remove(id);
        }
        maintain(&mut space, 1000, 2);
        assert!(!space.is_trained());
        assert_eq!(space.lists.len(), 1);
        assert_eq!(space.len(), 400);
    }
}
