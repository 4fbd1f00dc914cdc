//! Adam / AdamW with its state exposed, so a checkpoint can hold it and a resumed run continues
//! exactly where it stopped.
use candle_core::{backprop::GradStore, Result, Tensor, Var};

#[derive(Clone, Debug)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub step: u64,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
}

impl Adam {
    pub fn new(vars: &[Var], lr: f64, beta1: f64, beta2: f64, weight_decay: f64) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        Ok(Adam {
            lr,
            beta1,
            beta2,
            eps: 1e-8,
            weight_decay,
            step: 0,
            m: vars.iter().map(zeros).collect::<Result<_>>()?,
            v: vars.iter().map(zeros).collect::<Result<_>>()?,
        })
    }

    pub fn step(&mut self, vars: &[Var], grads: &GradStore) -> Result<()> {
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step as i32);
        let bc2 = 1.0 - self.beta2.powi(self.step as i32);
        for (i, var) in vars.iter().enumerate() {
            let Some(g) = grads.get(var) else { continue };
            // Gradients carry the forward graph; without detaching, the moments would chain every
            // step's graph together and memory would grow without bound.
            let g = g.detach();
            let g = &g;
            self.m[i] = ((&self.m[i] * self.beta1)? + (g * (1.0 - self.beta1))?)?.detach();
            self.v[i] = ((&self.v[i] * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?.detach();
            let mhat = (&self.m[i] / bc1)?;
            let vhat = (&self.v[i] / bc2)?;
            let mut upd = (mhat / (vhat.sqrt()? + self.eps)?)?;
            if self.weight_decay > 0.0 {
                upd = (upd + (var.as_tensor().detach() * self.weight_decay)?)?;
            }
            var.set(&(var.as_tensor().detach() - (upd * self.lr)?)?)?;
        }
        Ok(())
    }
}
