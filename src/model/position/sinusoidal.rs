//! Fixed sinusoidal positions (Vaswani et al. 2017), added to the token embeddings.

/// Fixed sinusoidal position embeddings, row-major `[len, dim]`:
/// `PE(p, 2i) = sin(p / 10000^(2i/d))`, `PE(p, 2i+1) = cos(p / 10000^(2i/d))`.
pub fn sinusoidal_table(len: usize, dim: usize) -> Vec<f32> {
    let mut table = vec![0f32; len * dim];
    for p in 0..len {
        for i in 0..dim / 2 {
            let angle = p as f64 / 10000f64.powf(2.0 * i as f64 / dim as f64);
            table[p * dim + 2 * i] = angle.sin() as f32;
            table[p * dim + 2 * i + 1] = angle.cos() as f32;
        }
    }
    table
}
