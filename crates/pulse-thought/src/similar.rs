//! Similar users (method step 1): each user's top-k neighbours by cosine of their representations
//! (SASRec's last hidden state), excluding the user itself; ties go to the lower index, so the lists are
//! deterministic. Brute force over all pairs, rows split across threads.

/// For every row of `reps` (n × d, row-major), the `k` most similar other rows as (index, cosine).
pub fn top_k_cosine(reps: &[f32], d: usize, k: usize, threads: usize) -> Vec<Vec<(u32, f32)>> {
    assert!(d > 0 && reps.len() % d == 0, "reps must be n × d");
    let n = reps.len() / d;
    let norms: Vec<f32> = reps.chunks_exact(d).map(|r| r.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12)).collect();
    let unit: Vec<f32> = reps.chunks_exact(d).zip(&norms).flat_map(|(r, &nr)| r.iter().map(move |x| x / nr)).collect();
    let mut out: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
    let per = n.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (t, chunk) in out.chunks_mut(per).enumerate() {
            let unit = &unit;
            s.spawn(move || {
                let mut sims: Vec<(f32, u32)> = Vec::with_capacity(n);
                for (off, slot) in chunk.iter_mut().enumerate() {
                    let i = t * per + off;
                    let a = &unit[i * d..(i + 1) * d];
                    sims.clear();
                    for j in 0..n {
                        if j != i {
                            let b = &unit[j * d..(j + 1) * d];
                            sims.push((a.iter().zip(b).map(|(x, y)| x * y).sum(), j as u32));
                        }
                    }
                    let kk = k.min(sims.len());
                    let desc = |x: &(f32, u32), y: &(f32, u32)| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1));
                    if kk > 0 && kk < sims.len() {
                        sims.select_nth_unstable_by(kk - 1, desc);
                    }
                    sims.truncate(kk);
                    sims.sort_by(desc);
                    *slot = sims.iter().map(|&(c, j)| (j, c)).collect();
                }
            });
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_and_excludes_self() {
        // Deterministic pseudo-random vectors, with a duplicate pair (tie) and a scaled copy (cosine 1).
        let (n, d) = (57, 7);
        let mut x = 12345u64;
        let mut reps: Vec<f32> = (0..n * d)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        for k in 0..d {
            reps[3 * d + k] = reps[10 * d + k] * 2.0; // user 3 = 2 × user 10
            reps[20 * d + k] = reps[10 * d + k]; // user 20 = user 10
        }
        for threads in [1, 2, 3] {
            let got = top_k_cosine(&reps, d, 5, threads);
            for i in 0..n {
                let cos = |j: usize| {
                    let a = &reps[i * d..(i + 1) * d];
                    let b = &reps[j * d..(j + 1) * d];
                    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                    dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
                };
                let mut naive: Vec<(u32, f32)> = (0..n).filter(|&j| j != i).map(|j| (j as u32, cos(j))).collect();
                naive.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                assert_eq!(got[i].len(), 5);
                for (g, w) in got[i].iter().zip(&naive) {
                    assert!((g.1 - w.1).abs() < 1e-5, "user {i}: {:?} vs {:?}", got[i], &naive[..5]);
                }
                assert!(got[i].iter().all(|&(j, _)| j as usize != i));
            }
            // 10's nearest are 3 and 20 (cosine 1), the lower index first.
            assert_eq!(got[10][0].0, 3);
            assert_eq!(got[10][1].0, 20);
        }
    }
}
