//! Top-k search over a space: rows are scored a block at a time (contiguous rows, the
//! vectorised kernel in [`crate::index::scoring`]), filtered on their attributes, and kept in
//! a bounded heap per thread; threads take chunks of rows from a shared counter.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use super::space::{RowAttrs, Space};
use super::Strings;
use crate::index::filter::{BpmRange, Folded};
use crate::index::scoring::Scorer;

/// Rows one thread takes at a time.
const CHUNK: usize = 4096;
/// Rows scored in one call of the kernel.
const BLOCK: usize = 256;
/// Fewer rows than this per thread are not worth a thread.
const MIN_ROWS_PER_THREAD: usize = 32 * 1024;

/// A filter compiled against the index's strings. Excluded tracks are not checked row by row:
/// the search asks for that many more hits and drops them afterwards ([`without_excluded`]),
/// which keeps the common "more like this track, not itself" query on the unfiltered path.
#[derive(Debug, Default)]
pub(crate) struct RowFilter {
    /// Nothing to check: every row passes.
    pub everything: bool,
    /// Genre or label ids that pass; `None`: any genre.
    genres: Option<IdSet>,
    exclude_artists: IdSet,
    exclude_albums: IdSet,
    min_duration_s: Option<f64>,
    max_duration_s: Option<f64>,
    bpm: Option<BpmRange>,
    /// Bit `code` set for each key that passes; `None`: any key.
    keys: Option<u32>,
}

impl RowFilter {
    pub fn compile(filter: &Folded, strings: &Strings) -> RowFilter {
        let ids = |values: &[String]| IdSet::new(values.iter().filter_map(|v| strings.get(v)));
        let genres = (!filter.genres.is_empty()).then(|| ids(&filter.genres));
        let compiled = RowFilter {
            everything: false,
            genres,
            exclude_artists: ids(&filter.exclude_artists),
            exclude_albums: ids(&filter.exclude_albums),
            min_duration_s: filter.min_duration_s,
            max_duration_s: filter.max_duration_s,
            bpm: filter.bpm,
            keys: (!filter.keys.is_empty()).then(|| filter.keys.iter().fold(0u32, |bits, k| bits | 1 << k.code())),
        };
        let everything = compiled.genres.is_none()
            && compiled.exclude_artists.is_empty()
            && compiled.exclude_albums.is_empty()
            && compiled.min_duration_s.is_none()
            && compiled.max_duration_s.is_none()
            && compiled.bpm.is_none()
            && compiled.keys.is_none();
        RowFilter { everything, ..compiled }
    }

    /// No row can pass (a genre filter naming only genres nothing has).
    pub fn rejects_everything(&self) -> bool {
        self.genres.as_ref().is_some_and(IdSet::is_empty)
            || matches!((self.min_duration_s, self.max_duration_s), (Some(lo), Some(hi)) if lo > hi)
    }

    #[inline]
    pub fn pass(&self, a: &RowAttrs) -> bool {
        if let Some(genres) = &self.genres {
            if !genres.contains(a.genre) && !genres.contains(a.label) {
                return false;
            }
        }
        if self.exclude_artists.contains(a.artist) || self.exclude_albums.contains(a.album) {
            return false;
        }
        if self.min_duration_s.is_some_and(|lo| a.duration_s < lo)
            || self.max_duration_s.is_some_and(|hi| a.duration_s > hi)
        {
            return false;
        }
        // NaN (no tempo) is in no range; NO_KEY (255) shifts past every key's bit.
        if self.bpm.is_some_and(|range| a.bpm.is_nan() || !range.contains(a.bpm)) {
            return false;
        }
        self.keys.is_none_or(|keys| a.key < 24 && keys & (1 << a.key) != 0)
    }
}

/// A set of string ids, as bits: one load and a mask per lookup.
#[derive(Debug, Default)]
struct IdSet {
    bits: Vec<u64>,
}

impl IdSet {
    fn new(ids: impl Iterator<Item = u32>) -> IdSet {
        let mut bits = Vec::new();
        for id in ids {
            let word = id as usize / 64;
            if word >= bits.len() {
                bits.resize(word + 1, 0);
            }
            bits[word] |= 1 << (id % 64);
        }
        IdSet { bits }
    }

    fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    #[inline]
    fn contains(&self, id: u32) -> bool {
        self.bits.get(id as usize / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// A scored row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub score: f32,
    pub id: i64,
    pub list: u32,
    pub row: u32,
}

impl Candidate {
    /// `Less` when `self` ranks before `other`: higher score, then lower track id.
    fn rank(&self, other: &Candidate) -> Ordering {
        other.score.total_cmp(&self.score).then(self.id.cmp(&other.id))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.rank(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank(other)
    }
}

/// The best `k` candidates seen; the heap's top is the worst of them.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK { k, heap: BinaryHeap::with_capacity(k.min(4096) + 1) }
    }

    #[inline]
    pub fn push(&mut self, candidate: Candidate) {
        if self.heap.len() < self.k {
            self.heap.push(candidate);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if candidate < *worst {
                *worst = candidate;
            }
        }
    }

    /// Lowest score that still gets in, when full.
    #[inline]
    fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::NEG_INFINITY, |c| c.score)
        }
    }

    pub fn merge(&mut self, other: TopK) {
        for c in other.heap {
            self.push(c);
        }
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<Candidate> {
        self.heap.into_sorted_vec()
    }
}

/// The best `limit` of `candidates` (best first) that are not in `excluded`.
pub(crate) fn without_excluded(candidates: Vec<Candidate>, excluded: &HashSet<i64>, limit: usize) -> Vec<Candidate> {
    candidates.into_iter().filter(|c| !excluded.contains(&c.id)).take(limit).collect()
}

/// Run `work(state, unit)` for every unit in `0..units` on up to `threads` scoped threads, each
/// with its own state from `init`; returns the states.
pub(crate) fn parallel<S: Send>(
    threads: usize,
    units: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize) + Sync,
) -> Vec<S> {
    let threads = threads.clamp(1, units.max(1));
    if threads == 1 {
        let mut state = init();
        for unit in 0..units {
            work(&mut state, unit);
        }
        return vec![state];
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    loop {
                        let unit = next.fetch_add(1, AtomicOrdering::Relaxed);
                        if unit >= units {
                            break;
                        }
                        work(&mut state, unit);
                    }
                    state
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

/// Threads worth using for `rows` rows.
pub(crate) fn threads_for(rows: usize, max_threads: usize) -> usize {
    (rows / MIN_ROWS_PER_THREAD).clamp(1, max_threads.max(1))
}

/// What one thread accumulates.
struct Partial {
    top: TopK,
    passed: usize,
    scores: Vec<f32>,
    /// Which rows of the block pass the filter.
    pass: Vec<bool>,
}

/// Score the rows of `lists` (indices into `space.lists`) that pass `filter`; returns the best
/// `limit` and how many rows passed.
pub(crate) fn scan(
    space: &Space,
    lists: &[usize],
    scorer: &Scorer,
    filter: &RowFilter,
    limit: usize,
    max_threads: usize,
) -> (TopK, usize) {
    // Work units: (list, first row, end row), at most CHUNK rows each.
    let mut units = Vec::new();
    let mut rows = 0;
    for &l in lists {
        let n = space.lists[l].len();
        rows += n;
        let mut start = 0;
        while start < n {
            let end = (start + CHUNK).min(n);
            units.push((l, start, end));
            start = end;
        }
    }
    let dim = space.dim;
    let partials = parallel(
        threads_for(rows, max_threads),
        units.len(),
        || Partial { top: TopK::new(limit), passed: 0, scores: vec![0.0; BLOCK], pass: vec![true; BLOCK] },
        |partial, u| {
            let (l, start, end) = units[u];
            let list = &space.lists[l];
            let mut r = start;
            while r < end {
                let e = (r + BLOCK).min(end);
                let passing = if filter.everything {
                    e - r // `pass` stays all true
                } else {
                    let mut n = 0;
                    for (p, a) in partial.pass.iter_mut().zip(&list.attrs[r..e]) {
                        *p = filter.pass(a);
                        n += usize::from(*p);
                    }
                    n
                };
                partial.passed += passing;
                let scores = &mut partial.scores[..e - r];
                if passing * 4 >= e - r {
                    // Most rows pass: score the whole block with the kernel.
                    scorer.score_rows(&list.vectors[r * dim..e * dim], dim, scores);
                } else {
                    for (i, score) in scores.iter_mut().enumerate().filter(|(i, _)| partial.pass[*i]) {
                        let row = r + i;
                        scorer.score_rows(&list.vectors[row * dim..(row + 1) * dim], dim, std::slice::from_mut(score));
                    }
                }
                let threshold = partial.top.threshold();
                for (i, &score) in scores.iter().enumerate() {
                    if partial.pass[i] && score >= threshold {
                        let row = r + i;
                        partial.top.push(Candidate { score, id: list.ids[row], list: l as u32, row: row as u32 });
                    }
                }
                r = e;
            }
        },
    );
    let mut top = TopK::new(limit);
    let mut passed = 0;
    for partial in partials {
        passed += partial.passed;
        top.merge(partial.top);
    }
    (top, passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(score: f32, id: i64) -> Candidate {
        Candidate { score, id, list: 0, row: 0 }
    }

    #[test]
    fn top_k_keeps_the_best_and_breaks_ties_by_id() {
        let mut top = TopK::new(3);
        for (score, id) in [(0.5, 1), (0.9, 2), (0.1, 3), (0.9, 0), (0.7, 4), (0.5, 5)] {
            top.push(candidate(score, id));
        }
        let ids: Vec<i64> = top.into_sorted().iter().map(|c| c.id).collect();
        assert_eq!(ids, [0, 2, 4]);
    }

    #[test]
    fn parallel_visits_every_unit_once() {
        let states = parallel(3, 100, Vec::new, |seen: &mut Vec<usize>, u| seen.push(u));
        let mut all: Vec<usize> = states.into_iter().flatten().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }
}
