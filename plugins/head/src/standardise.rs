//! Per-dimension standardisation: zero mean, unit variance on the training examples.

use serde::{Deserialize, Serialize};

/// A dimension that hardly varies in training is scaled by 1, not blown up by its tiny spread.
const MIN_STD: f64 = 1e-6;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardiser {
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Standardiser {
    /// Fits on `rows` (each of length `dim`).
    pub fn fit<'a>(rows: impl Iterator<Item = &'a [f32]> + Clone, dim: usize) -> Standardiser {
        let mut n = 0usize;
        let mut sum = vec![0f64; dim];
        for row in rows.clone() {
            n += 1;
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
        let n_f = n.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n_f).collect();
        let mut var = vec![0f64; dim];
        for row in rows {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (f64::from(v) - m).powi(2);
            }
        }
        let scale = var.iter().map(|v| {
            let std = (v / n_f).sqrt();
            if std < MIN_STD {
                1.0
            } else {
                std as f32
            }
        });
        Standardiser { mean: mean.iter().map(|&m| m as f32).collect(), scale: scale.collect() }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// `(x - mean) / scale`, in f64 for the trainer's arithmetic.
    pub fn apply(&self, row: &[f32], out: &mut Vec<f64>) {
        out.clear();
        out.extend(
            row.iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .map(|((&x, &m), &s)| (f64::from(x) - f64::from(m)) / f64::from(s)),
        );
    }
}
