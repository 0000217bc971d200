//! One embedding space in memory: vectors in contiguous `f32` rows, grouped into lists (one
//! list when the space is searched exactly; one per centroid once it has an approximate
//! index), with each row's filter attributes beside it.

use std::collections::HashMap;

use crate::index::scoring::dot;

/// What the filters look at, per row. Strings are ids in the index's [`super::Strings`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RowAttrs {
    /// The track's genre tag.
    pub genre: u32,
    /// The space's model's top label for the track.
    pub label: u32,
    pub artist: u32,
    pub album: u32,
    pub duration_s: f64,
    /// The track's tempo; NaN when unknown (no range holds it).
    pub bpm: f64,
    /// The track's key as a [`crate::camelot::Camelot::code`]; [`NO_KEY`] when unknown.
    pub key: u8,
}

/// [`RowAttrs::key`] of a track without a key.
pub(crate) const NO_KEY: u8 = u8::MAX;

/// Rows of one list: `ids[i]`, `attrs[i]` and `vectors[i * dim..(i + 1) * dim]` belong together.
#[derive(Debug, Clone, Default)]
pub(crate) struct List {
    pub ids: Vec<i64>,
    pub attrs: Vec<RowAttrs>,
    pub vectors: Vec<f32>,
}

impl List {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Space {
    pub dim: usize,
    pub lists: Vec<List>,
    /// `lists.len() * dim` unit vectors once the space has an approximate index, else empty
    /// (and then there is exactly one list).
    pub centroids: Vec<f32>,
    /// Size of the space when the centroids were trained.
    pub trained_len: usize,
    /// Where each track's row is: (list, row).
    slots: HashMap<i64, (u32, u32)>,
}

impl Space {
    pub fn new(dim: usize) -> Space {
        Space { dim, lists: vec![List::default()], centroids: Vec::new(), trained_len: 0, slots: HashMap::new() }
    }

    /// A space from its parts (loaded from a snapshot); the slots are rebuilt.
    pub fn from_parts(dim: usize, lists: Vec<List>, centroids: Vec<f32>, trained_len: usize) -> Result<Space, String> {
        if lists.is_empty() {
            return Err("a space without lists".into());
        }
        if !centroids.is_empty() && centroids.len() != lists.len() * dim {
            return Err(format!("{} centroid values for {} lists of dimension {dim}", centroids.len(), lists.len()));
        }
        if centroids.is_empty() && lists.len() != 1 {
            return Err(format!("{} lists without centroids", lists.len()));
        }
        let mut slots = HashMap::new();
        for (l, list) in lists.iter().enumerate() {
            if list.attrs.len() != list.ids.len() || list.vectors.len() != list.ids.len() * dim {
                return Err(format!("list {l} has mismatched columns"));
            }
            for (r, &id) in list.ids.iter().enumerate() {
                if slots.insert(id, (l as u32, r as u32)).is_some() {
                    return Err(format!("track {id} appears twice"));
                }
            }
        }
        Ok(Space { dim, lists, centroids, trained_len, slots })
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_trained(&self) -> bool {
        !self.centroids.is_empty()
    }

    pub fn vector(&self, list: usize, row: usize) -> &[f32] {
        &self.lists[list].vectors[row * self.dim..(row + 1) * self.dim]
    }

    /// The list whose centroid is most similar to `vector` (0 without an approximate index).
    pub fn nearest_list(&self, vector: &[f32]) -> usize {
        if self.centroids.is_empty() {
            return 0;
        }
        let mut best = (f32::NEG_INFINITY, 0);
        for (l, centroid) in self.centroids.chunks_exact(self.dim).enumerate() {
            let s = dot(vector, centroid);
            if s > best.0 {
                best = (s, l);
            }
        }
        best.1
    }

    /// Add or replace a track's row. `vector` is normalised and `dim` long.
    pub fn insert(&mut self, id: i64, vector: &[f32], attrs: RowAttrs) {
        debug_assert_eq!(vector.len(), self.dim);
        self.remove(id);
        let l = self.nearest_list(vector);
        let list = &mut self.lists[l];
        let row = list.ids.len();
        list.ids.push(id);
        list.attrs.push(attrs);
        list.vectors.extend_from_slice(vector);
        self.slots.insert(id, (l as u32, row as u32));
    }

    /// Remove a track's row (the list's last row takes its place). False if it had none.
    pub fn remove(&mut self, id: i64) -> bool {
        let Some((l, row)) = self.slots.remove(&id) else { return false };
        let (l, row) = (l as usize, row as usize);
        let dim = self.dim;
        let list = &mut self.lists[l];
        let last = list.ids.len() - 1;
        list.ids.swap_remove(row);
        list.attrs.swap_remove(row);
        if row != last {
            list.vectors.copy_within(last * dim..(last + 1) * dim, row * dim);
            self.slots.insert(list.ids[row], (l as u32, row as u32));
        }
        list.vectors.truncate(last * dim);
        true
    }

    /// Replace the lists (and centroids) wholesale: every row is moved to the list of its
    /// nearest centroid, or into one list when `centroids` is empty. `assign[i]` is the list of
    /// the i-th row in the current list order, computed by the caller (in parallel).
    pub fn regroup(&mut self, centroids: Vec<f32>, assign: &[u32], trained_len: usize) {
        let nlist = if centroids.is_empty() { 1 } else { centroids.len() / self.dim };
        let dim = self.dim;
        let mut counts = vec![0usize; nlist];
        for &a in assign {
            counts[a as usize] += 1;
        }
        let mut lists: Vec<List> = counts
            .iter()
            .map(|&n| List {
                ids: Vec::with_capacity(n),
                attrs: Vec::with_capacity(n),
                vectors: Vec::with_capacity(n * dim),
            })
            .collect();
        let mut i = 0;
        for old in std::mem::take(&mut self.lists) {
            for r in 0..old.len() {
                let list = &mut lists[assign[i] as usize];
                list.ids.push(old.ids[r]);
                list.attrs.push(old.attrs[r]);
                list.vectors.extend_from_slice(&old.vectors[r * dim..(r + 1) * dim]);
                i += 1;
            }
        }
        self.slots.clear();
        for (l, list) in lists.iter().enumerate() {
            for (r, &id) in list.ids.iter().enumerate() {
                self.slots.insert(id, (l as u32, r as u32));
            }
        }
        self.lists = lists;
        self.centroids = centroids;
        self.trained_len = trained_len;
    }

    /// A track's row attributes.
    #[cfg(test)]
    pub fn attrs(&self, id: i64) -> Option<RowAttrs> {
        self.slots.get(&id).map(|&(l, r)| self.lists[l as usize].attrs[r as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(genre: u32) -> RowAttrs {
        RowAttrs { genre, label: 0, artist: 0, album: 0, duration_s: 1.0, bpm: 120.0 + f64::from(genre), key: NO_KEY }
    }

    #[test]
    fn removing_moves_the_last_row_into_the_hole() {
        let mut space = Space::new(2);
        for id in 0..4 {
            space.insert(id, &[id as f32, 1.0], attrs(id as u32));
        }
        assert!(space.remove(1));
        assert!(!space.remove(1));
        assert_eq!(space.len(), 3);
        assert_eq!(space.lists[0].ids, [0, 3, 2]);
        assert_eq!(space.vector(0, 1), [3.0, 1.0]);
        assert_eq!(space.attrs(3), Some(attrs(3)));
        space.insert(3, &[9.0, 9.0], attrs(7));
        assert_eq!(space.len(), 3);
        assert_eq!(space.attrs(3), Some(attrs(7)));
        assert_eq!(space.lists[0].ids, [0, 2, 3]);
        assert_eq!(space.vector(0, 2), [9.0, 9.0]);
    }

    #[test]
    fn regrouping_keeps_every_row() {
        let mut space = Space::new(2);
        for id in 0..6 {
            space.insert(id, &[(id % 2) as f32, 1.0 - (id % 2) as f32], attrs(id as u32));
        }
        let assign: Vec<u32> = (0..6).map(|id| (id % 2) as u32).collect();
        space.regroup(vec![0.0, 1.0, 1.0, 0.0], &assign, 6);
        assert_eq!(space.lists.len(), 2);
        assert_eq!(space.lists[0].ids, [0, 2, 4]);
        assert_eq!(space.lists[1].ids, [1, 3, 5]);
        assert_eq!(space.nearest_list(&[1.0, 0.0]), 1);
        space.insert(6, &[0.9, 0.1], attrs(6));
        assert_eq!(space.lists[1].ids, [1, 3, 5, 6]);
        let assign = vec![0u32; 7];
        space.regroup(Vec::new(), &assign, 0);
        assert_eq!(space.lists.len(), 1);
        assert_eq!(space.len(), 7);
        assert!(space.remove(4));
        assert_eq!(space.len(), 6);
    }
}
