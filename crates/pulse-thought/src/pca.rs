//! Two-component PCA (power iteration with deflation on the centred rows) for pictures of the space.

/// Rows projected on their first two principal components (centred; deterministic).
pub fn pca2(rows: &[Vec<f32>]) -> Vec<[f32; 2]> {
    let n = rows.len();
    let d = rows.first().map_or(0, |r| r.len());
    if n == 0 || d == 0 {
        return Vec::new();
    }
    let mut mean = vec![0f64; d];
    for r in rows {
        for (m, &x) in mean.iter_mut().zip(r) {
            *m += x as f64 / n as f64;
        }
    }
    let x: Vec<Vec<f64>> = rows.iter().map(|r| r.iter().zip(&mean).map(|(&a, m)| a as f64 - m).collect()).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    let mut comps: Vec<Vec<f64>> = Vec::new();
    for c in 0..2 {
        // A fixed, non-degenerate start.
        let mut v: Vec<f64> = (0..d).map(|j| 1.0 + ((j * 7 + c * 13) % 11) as f64 / 11.0).collect();
        for _ in 0..200 {
            // v ← Xᵀ X v, with earlier components projected out.
            let xv: Vec<f64> = x.iter().map(|r| dot(r, &v)).collect();
            let mut w = vec![0f64; d];
            for (r, &s) in x.iter().zip(&xv) {
                for (wj, rj) in w.iter_mut().zip(r) {
                    *wj += rj * s;
                }
            }
            for p in &comps {
                let k = dot(&w, p);
                for (wj, pj) in w.iter_mut().zip(p) {
                    *wj -= k * pj;
                }
            }
            let norm = dot(&w, &w).sqrt();
            if norm < 1e-300 {
                break;
            }
            v = w.into_iter().map(|a| a / norm).collect();
        }
        comps.push(v);
    }
    x.iter().map(|r| [dot(r, &comps[0]) as f32, dot(r, &comps[1]) as f32]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_main_axes() {
        // 48 points spread along (1, 1, 0) widely and along (0, 0, 1) by ±1, uncorrelated (signs + − − +
        // over every 4 consecutive points).
        let rows: Vec<Vec<f32>> = (0..48)
            .map(|i| {
                let a = i as f32;
                let b = if matches!(i % 4, 0 | 3) { 1.0 } else { -1.0 };
                vec![a, a, b]
            })
            .collect();
        let p = pca2(&rows);
        let sign = p[47][0].signum();
        for (i, q) in p.iter().enumerate() {
            let along = (i as f32 - 23.5) * 2f32.sqrt();
            assert!((q[0] * sign - along).abs() < 1e-3, "{i}: {q:?}");
            assert!((q[1].abs() - 1.0).abs() < 1e-3, "{i}: {q:?}");
        }
        assert!(pca2(&[]).is_empty());
    }
}
