//! Multinomial logistic regression with an L2 penalty, fitted by accelerated gradient descent.
//!
//! The loss (mean cross-entropy plus `l2 / 2 · |W|²`, bias unpenalised) is smooth and, with
//! `l2 > 0`, strongly convex, so Nesterov's method with step `1 / L` converges without a line
//! search. `L` comes from the data: the softmax's Hessian is bounded by `1/2`, so
//! `L ≤ λmax(X̃ᵀX̃) / (2n) + l2`, with `X̃` the inputs and a column of ones for the bias.

/// Weights `[classes, dim]` row-major and one bias per class.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub weights: Vec<f64>,
    pub bias: Vec<f64>,
}

/// Stops when the gradient's largest entry is below this (the inputs are standardised, so one
/// tolerance fits every data set).
const GRADIENT_TOLERANCE: f64 = 1e-5;

/// Standardised inputs `x` (`n` rows of `dim`), labels in `0..classes`.
pub struct Problem<'a> {
    pub x: &'a [f64],
    pub y: &'a [usize],
    pub dim: usize,
    pub classes: usize,
}

impl Problem<'_> {
    fn n(&self) -> usize {
        self.y.len()
    }

    /// The step bound `L` for this problem without the penalty.
    pub fn smoothness(&self) -> f64 {
        // Power iteration on X̃ᵀX̃; 1 % margin for the iterations' shortfall.
        let d = self.dim + 1;
        let mut v = vec![1.0 / (d as f64).sqrt(); d];
        let mut eigen = 0.0;
        for _ in 0..60 {
            let mut next = vec![0.0; d];
            for row in self.x.chunks_exact(self.dim) {
                let dot: f64 = row.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>() + v[self.dim];
                for (n, a) in next.iter_mut().zip(row) {
                    *n += dot * a;
                }
                next[self.dim] += dot;
            }
            let norm = next.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            eigen = norm;
            v = next.into_iter().map(|a| a / norm).collect();
        }
        1.01 * eigen / (2.0 * self.n() as f64)
    }

    /// Mean cross-entropy (without the penalty) and its gradient at `fit`.
    pub(crate) fn loss_and_gradient(&self, fit: &Fit, gradient: &mut Fit) -> f64 {
        let (dim, classes) = (self.dim, self.classes);
        gradient.weights.iter_mut().for_each(|g| *g = 0.0);
        gradient.bias.iter_mut().for_each(|g| *g = 0.0);
        let mut logits = vec![0.0; classes];
        let mut loss = 0.0;
        for (row, &label) in self.x.chunks_exact(dim).zip(self.y) {
            probabilities(fit, row, &mut logits);
            loss -= logits[label].max(f64::MIN_POSITIVE).ln();
            logits[label] -= 1.0;
            for (c, &residual) in logits.iter().enumerate() {
                let g = &mut gradient.weights[c * dim..(c + 1) * dim];
                for (g, &a) in g.iter_mut().zip(row) {
                    *g += residual * a;
                }
                gradient.bias[c] += residual;
            }
        }
        let n = self.n() as f64;
        gradient.weights.iter_mut().for_each(|g| *g /= n);
        gradient.bias.iter_mut().for_each(|g| *g /= n);
        loss / n
    }

    /// Mean cross-entropy of `fit` on this problem.
    #[cfg(test)]
    pub fn loss(&self, fit: &Fit) -> f64 {
        let mut p = vec![0.0; self.classes];
        let total: f64 = self
            .x
            .chunks_exact(self.dim)
            .zip(self.y)
            .map(|(row, &label)| {
                probabilities(fit, row, &mut p);
                -p[label].max(f64::MIN_POSITIVE).ln()
            })
            .sum();
        total / self.n() as f64
    }
}

/// Fits with penalty `l2`, starting from `start` (a fit for a nearby penalty converges in a
/// fraction of the iterations) or from zero. `smoothness` is [`Problem::smoothness`].
pub fn fit(problem: &Problem<'_>, l2: f64, smoothness: f64, start: Option<&Fit>, max_iterations: usize) -> Fit {
    let zero = Fit { weights: vec![0.0; problem.classes * problem.dim], bias: vec![0.0; problem.classes] };
    let mut current = start.cloned().unwrap_or_else(|| zero.clone());
    let mut previous = current.clone();
    let mut look_ahead = current.clone();
    let mut gradient = zero;
    let step = 1.0 / (smoothness + l2);
    for iteration in 0..max_iterations {
        let momentum = iteration as f64 / (iteration as f64 + 3.0);
        for ((z, &c), &p) in look_ahead.weights.iter_mut().zip(&current.weights).zip(&previous.weights) {
            *z = c + momentum * (c - p);
        }
        for ((z, &c), &p) in look_ahead.bias.iter_mut().zip(&current.bias).zip(&previous.bias) {
            *z = c + momentum * (c - p);
        }
        problem.loss_and_gradient(&look_ahead, &mut gradient);
        for (g, &w) in gradient.weights.iter_mut().zip(&look_ahead.weights) {
            *g += l2 * w;
        }
        let largest = gradient.weights.iter().chain(&gradient.bias).fold(0.0f64, |m, g| m.max(g.abs()));
        std::mem::swap(&mut previous, &mut current);
        for ((c, &z), &g) in current.weights.iter_mut().zip(&look_ahead.weights).zip(&gradient.weights) {
            *c = z - step * g;
        }
        for ((c, &z), &g) in current.bias.iter_mut().zip(&look_ahead.bias).zip(&gradient.bias) {
            *c = z - step * g;
        }
        if largest < GRADIENT_TOLERANCE {
            break;
        }
    }
    current
}

/// Softmax of `W·row + b` into `out`.
pub fn probabilities(fit: &Fit, row: &[f64], out: &mut [f64]) {
    let dim = row.len();
    for (c, o) in out.iter_mut().enumerate() {
        let w = &fit.weights[c * dim..(c + 1) * dim];
        *o = fit.bias[c] + w.iter().zip(row).map(|(a, b)| a * b).sum::<f64>();
    }
    softmax(out);
}

pub fn softmax(values: &mut [f64]) {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        total += *v;
    }
    values.iter_mut().for_each(|v| *v /= total);
}
