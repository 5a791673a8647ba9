//! Parameter updates over the flat parameter buffer. Each rule is applied per
//! element; `g` is ∂L/∂θ, η the learning rate of the step, λ the weight decay.
//!
//! | rule | update |
//! |------|--------|
//! | `sgd` (the report's, section 2.1 step 5) | θ ← θ − η (g + λθ) |
//! | `momentum` | m ← μm + (g + λθ);  θ ← θ − η m |
//! | `nesterov` | m ← μm + (g + λθ);  θ ← θ − η (g + λθ + μm) |
//! | `adam` (Kingma & Ba 2015) | g′ = g + λθ;  m ← β₁m + (1−β₁)g′;  v ← β₂v + (1−β₂)g′²;  θ ← θ − η m̂ / (√v̂ + ε), with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ) |
//! | `adamw` (Loshchilov & Hutter 2019) | as adam on g, and decoupled decay: θ ← θ − η (m̂ / (√v̂ + ε) + λθ) |
//!
//! These match PyTorch's `SGD(momentum, nesterov, weight_decay)`, `Adam` and `AdamW`.

/// Update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    Sgd,
    Momentum,
    Nesterov,
    Adam,
    Adamw,
}

/// An update rule with its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Optimizer {
    pub rule: Rule,
    /// μ of momentum and nesterov.
    pub momentum: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// λ; 0 disables weight decay.
    pub weight_decay: f32,
}

impl Default for Optimizer {
    /// Plain SGD, the report's rule.
    fn default() -> Self {
        Optimizer {
            rule: Rule::Sgd,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Per-parameter state: first and second moments (empty when the rule has
/// none) and the number of steps taken.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub steps: u64,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// Per-step constants of an update.
#[derive(Clone, Copy, Debug)]
pub struct StepConsts {
    lr: f32,
    /// 1/(1−β₁ᵗ) and 1/(1−β₂ᵗ)
    c1: f32,
    c2: f32,
}

impl Optimizer {
    /// The rule with the hyperparameters it uses, e.g. `adam (β₁ 0.9, β₂ 0.999, ε 1e-8)`.
    pub fn describe(&self) -> String {
        let rule = match self.rule {
            Rule::Sgd => "sgd".to_string(),
            Rule::Momentum => format!("momentum (μ {})", self.momentum),
            Rule::Nesterov => format!("nesterov (μ {})", self.momentum),
            Rule::Adam | Rule::Adamw => format!(
                "{} (β₁ {}, β₂ {}, ε {:e})",
                if self.rule == Rule::Adam { "adam" } else { "adamw" },
                self.beta1,
                self.beta2,
                self.eps
            ),
        };
        format!("{rule}, weight decay {}", self.weight_decay)
    }

    /// Fresh state for `n` parameters.
    pub fn state(&self, n: usize) -> State {
        let (m, v) = match self.rule {
            Rule::Sgd => (0, 0),
            Rule::Momentum | Rule::Nesterov => (n, 0),
            Rule::Adam | Rule::Adamw => (n, n),
        };
        State {
            steps: 0,
            m: vec![0.0; m],
            v: vec![0.0; v],
        }
    }

    /// Constants of step number `t` (from 1) at learning rate `lr`.
    pub fn consts(&self, lr: f32, t: u64) -> StepConsts {
        let t = t.min(i32::MAX as u64) as i32;
        StepConsts {
            lr,
            c1: 1.0 / (1.0 - (self.beta1 as f64).powi(t)) as f32,
            c2: 1.0 / (1.0 - (self.beta2 as f64).powi(t)) as f32,
        }
    }

    /// Updates parameters `p` with gradients `g`; `m`, `v` are their moments
    /// (read only by the rules that keep them: empty slices for the others).
    /// One loop per rule over the zipped slices, so each compiles to vector code.
    pub fn update(&self, k: StepConsts, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let (lam, lr) = (self.weight_decay, k.lr);
        // With λ = 0 the gradient is used exactly as given.
        let l2 = |g: f32, p: f32| if lam == 0.0 { g } else { g + lam * p };
        match self.rule {
            Rule::Sgd => {
                for (p, &g) in p.iter_mut().zip(g) {
                    *p -= lr * l2(g, *p);
                }
            }
            Rule::Momentum => {
                for ((p, &g), m) in p.iter_mut().zip(g).zip(m) {
                    *m = self.momentum * *m + l2(g, *p);
                    *p -= lr * *m;
                }
            }
            Rule::Nesterov => {
                for ((p, &g), m) in p.iter_mut().zip(g).zip(m) {
                    let g = l2(g, *p);
                    *m = self.momentum * *m + g;
                    *p -= lr * (g + self.momentum * *m);
                }
            }
            Rule::Adam | Rule::Adamw => {
                let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
                let decoupled = self.rule == Rule::Adamw;
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
                    let g = if decoupled { g } else { l2(g, *p) };
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    let step = (*m * k.c1) / ((*v * k.c2).sqrt() + eps);
                    if decoupled && lam != 0.0 {
                        *p -= lr * (step + lam * *p);
                    } else {
                        *p -= lr * step;
                    }
                }
            }
        }
    }

    /// One step over whole buffers (serial; the training loop runs the same
    /// [`update`](Self::update) in parallel blocks).
    pub fn step(&self, state: &mut State, params: &mut [f32], grads: &[f32], lr: f32) {
        state.steps += 1;
        let k = self.consts(lr, state.steps);
        self.update(k, params, grads, &mut state.m, &mut state.v);
    }
}

/// One plain SGD step: θ ← θ − η g.
pub fn sgd_step(params: &mut [f32], grads: &[f32], lr: f32) {
    Optimizer::default().step(&mut State::default(), params, grads, lr);
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// η throughout
    Constant,
    /// η·γ^⌊(epoch−1)/step_size⌋
    Step,
    /// η·½(1 + cos(π·progress)), progress from 0 at the first step to 1 at the last
    Cosine,
}

/// A schedule with its parameters, plus an optional linear warm-up.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub step_size: usize,
    pub gamma: f32,
    /// Epochs over which η rises linearly from η/steps to η (0: none).
    pub warmup_epochs: usize,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            kind: ScheduleKind::Constant,
            step_size: 30,
            gamma: 0.1,
            warmup_epochs: 0,
        }
    }
}

impl Schedule {
    /// `constant`, `step (every 30 epochs ×0.1)` or `cosine`, with any warm-up.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            ScheduleKind::Constant => "constant".to_string(),
            ScheduleKind::Step => format!("step (every {} epochs ×{})", self.step_size, self.gamma),
            ScheduleKind::Cosine => "cosine".to_string(),
        };
        match self.warmup_epochs {
            0 => kind,
            w => format!("{kind} after {w} warm-up epoch{}", if w == 1 { "" } else { "s" }),
        }
    }

    /// η at step `step` (from 0) of `steps_per_epoch · epochs`.
    pub fn lr(&self, base: f32, step: usize, steps_per_epoch: usize, epochs: usize) -> f32 {
        let total = (steps_per_epoch * epochs).max(1);
        let epoch = step / steps_per_epoch.max(1); // from 0
        let mut lr = match self.kind {
            ScheduleKind::Constant => base,
            ScheduleKind::Step => base * self.gamma.powi((epoch / self.step_size.max(1)) as i32),
            ScheduleKind::Cosine => {
                let progress = step as f64 / (total.max(2) - 1) as f64;
                (base as f64 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32
            }
        };
        let warm = self.warmup_epochs * steps_per_epoch;
        if step < warm {
            lr *= (step + 1) as f32 / warm as f32;
        }
        lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_step(rule: Rule, weight_decay: f32, steps: usize) -> (f32, State) {
        let opt = Optimizer {
            rule,
            weight_decay,
            ..Optimizer::default()
        };
        let mut state = opt.state(1);
        let mut p = [1.0f32];
        for _ in 0..steps {
            opt.step(&mut state, &mut p, &[0.5], 0.1);
        }
        (p[0], state)
    }

    /// Each rule against values worked out by hand (θ = 1, g = 0.5, η = 0.1, μ = 0.9).
    #[test]
    fn hand_computed_steps() {
        let mut p = [1.0f32, -2.0, 0.5];
        sgd_step(&mut p, &[0.5, -1.0, 0.0], 0.1);
        assert_eq!(p, [0.95, -1.9, 0.5]);
        // sgd with λ = 0.1: 1 − 0.1·(0.5 + 0.1) = 0.94
        assert!((one_step(Rule::Sgd, 0.1, 1).0 - 0.94).abs() < 1e-7);
        // momentum, two steps: m₁ = 0.5, θ₁ = 0.95; m₂ = 0.45 + 0.5 = 0.95, θ₂ = 0.855
        assert!((one_step(Rule::Momentum, 0.0, 2).0 - 0.855).abs() < 1e-6);
        // nesterov, one step: m = 0.5, θ = 1 − 0.1·(0.5 + 0.45) = 0.905
        assert!((one_step(Rule::Nesterov, 0.0, 1).0 - 0.905).abs() < 1e-6);
        // adam, first step: m̂ = g, v̂ = g², θ = 1 − 0.1·0.5/(0.5 + 1e-8) ≈ 0.9
        let (p, s) = one_step(Rule::Adam, 0.0, 1);
        assert!((p - 0.9).abs() < 1e-6 && s.steps == 1 && (s.m[0] - 0.05).abs() < 1e-7);
        // adamw with λ = 0.1: θ = 1 − 0.1·(1 + 0.1·1) = 0.89
        assert!((one_step(Rule::Adamw, 0.1, 1).0 - 0.89).abs() < 1e-6);
        // adam with λ = 0.1 folds λθ into g: g′ = 0.6, the first step is still −η·sign = 0.9
        assert!((one_step(Rule::Adam, 0.1, 1).0 - 0.9).abs() < 1e-6);
    }

    #[test]
    fn schedules() {
        let s = Schedule::default();
        assert_eq!(s.lr(0.1, 500, 100, 10), 0.1);
        let step = Schedule {
            kind: ScheduleKind::Step,
            step_size: 2,
            gamma: 0.5,
            warmup_epochs: 0,
        };
        assert_eq!(step.lr(0.1, 199, 100, 10), 0.1);
        assert_eq!(step.lr(0.1, 200, 100, 10), 0.05);
        assert_eq!(step.lr(0.1, 450, 100, 10), 0.025);
        let cos = Schedule {
            kind: ScheduleKind::Cosine,
            ..Schedule::default()
        };
        assert_eq!(cos.lr(0.1, 0, 100, 10), 0.1);
        assert!(cos.lr(0.1, 999, 100, 10).abs() < 1e-9);
        assert!((cos.lr(0.1, 500, 100, 10) - 0.05).abs() < 1e-3);
        let warm = Schedule {
            warmup_epochs: 1,
            ..Schedule::default()
        };
        assert!((warm.lr(0.1, 0, 100, 10) - 0.001).abs() < 1e-9);
        assert!((warm.lr(0.1, 49, 100, 10) - 0.05).abs() < 1e-7);
        assert_eq!(warm.lr(0.1, 100, 100, 10), 0.1);
    }
}
