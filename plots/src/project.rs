//! Two dimensions out of many: the first two principal components, by power iteration on the
//! centred data (no d × d covariance, so a 200-d space of 100 000 tracks is cheap).

/// The 2-D coordinates of each row (all rows of one length). Deterministic: the start vectors
/// are fixed, and each component's sign is chosen so its largest coordinate is positive.
pub fn pca_2d(rows: &[Vec<f32>]) -> Vec<[f32; 2]> {
    let n = rows.len();
    let dim = rows.first().map_or(0, Vec::len);
    if n == 0 || dim == 0 {
        return vec![[0.0, 0.0]; n];
    }
    let mut mean = vec![0f64; dim];
    for row in rows {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v) / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> =
        rows.iter().map(|row| row.iter().zip(&mean).map(|(&v, m)| f64::from(v) - m).collect()).collect();
    let first = component(&centred, dim, &[]);
    let second = component(&centred, dim, std::slice::from_ref(&first));
    centred.iter().map(|row| [dot(row, &first) as f32, dot(row, &second) as f32]).collect()
}

/// The leading eigenvector of XᵀX orthogonal to `found`.
fn component(x: &[Vec<f64>], dim: usize, found: &[Vec<f64>]) -> Vec<f64> {
    // A start vector with every coordinate different, so it is not orthogonal to the answer
    // by accident of symmetry.
    let mut v: Vec<f64> = (0..dim).map(|i| 1.0 + (i as f64 * 0.618_033_988_7).fract()).collect();
    for _ in 0..200 {
        let mut next = vec![0f64; dim];
        for row in x {
            let projection = dot(row, &v);
            for (n, r) in next.iter_mut().zip(row) {
                *n += projection * r;
            }
        }
        for f in found {
            let along = dot(&next, f);
            next.iter_mut().zip(f).for_each(|(n, f)| *n -= along * f);
        }
        let norm = dot(&next, &next).sqrt();
        if norm < 1e-12 {
            break;
        }
        next.iter_mut().for_each(|n| *n /= norm);
        let change: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
        v = next;
        if change < 1e-10 {
            break;
        }
    }
    let largest = v.iter().copied().fold(0.0f64, |m, c| if c.abs() > m.abs() { c } else { m });
    if largest < 0.0 {
        v.iter_mut().for_each(|c| *c = -*c);
    }
    v
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
