//! Reductions written so the compiler vectorises them (independent accumulator lanes; a plain
//! `zip().map().sum()` over floats stays scalar, because float addition is not associative).

/// Σ a[i]·b[i] over the shorter length, in 16 f32 lanes.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Σ a[i]·b[i] in f64, 8 lanes.
#[inline]
pub fn dot64(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f64 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// (Σ x, Σ x²) of an f32 row, accumulated in f64 lanes.
#[inline]
pub fn sum_sq(row: &[f32]) -> (f64, f64) {
    let mut s = [0f64; 8];
    let mut q = [0f64; 8];
    let c = row.chunks_exact(8);
    let r = c.remainder();
    for x in c {
        for i in 0..8 {
            let v = x[i] as f64;
            s[i] += v;
            q[i] += v * v;
        }
    }
    let (mut s1, mut q1): (f64, f64) = (s.iter().sum(), q.iter().sum());
    for &x in r {
        s1 += x as f64;
        q1 += (x as f64) * (x as f64);
    }
    (s1, q1)
}
