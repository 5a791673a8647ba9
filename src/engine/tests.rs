//! Each engine piece against its textbook twin.

use super::conv::{ConvRelu, DeltaSource, Strategy};
use super::dense;
use crate::kernels::conv::Shape;
use crate::kernels::{Kernels, Level, PORTABLE_CONV};
use crate::layers::conv2d::Conv2d;
use crate::layers::{relu, sigmoid};
use crate::linalg::random_vec;
use crate::rng::Rng;

/// Every level this CPU has, and the portable level with the portable
/// convolution kernels (so that the `Direct` strategy's references run too).
fn levels() -> Vec<&'static Kernels> {
    let mut all = Kernels::available();
    let portable = Kernels::for_level(Level::Portable).unwrap();
    all.push(Box::leak(Box::new(Kernels {
        conv: Some(PORTABLE_CONV),
        ..*portable
    })));
    all
}

fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what} [{i}]: {a} vs {b}");
    }
}

/// The portable σ kernel is the textbook's σ, bit for bit.
#[test]
fn portable_sigmoid_is_the_textbook_sigmoid() {
    let z: Vec<f32> = (0..=4000).map(|i| (i as f32 - 2000.0) * 0.05).collect();
    let (mut a, mut b) = (z.clone(), z);
    (Kernels::for_level(Level::Portable).unwrap().sigmoid)(&mut a);
    sigmoid::forward(&mut b);
    assert_eq!(a, b);
}

/// The engine's dense layer against the textbook's, with ten outputs (the
/// ten-output kernels) and with other widths (the strided products).
#[test]
fn dense_matches_the_textbook_layer() {
    let mut rng = Rng::new(41, 0);
    for k in levels() {
        for (batch, n_in, n_out) in [(5, 33, 10), (7, 784, 64), (3, 20, 13)] {
            let x: Vec<f32> = random_vec(batch * n_in, &mut rng);
            let w: Vec<f32> = random_vec(n_out * n_in, &mut rng);
            let b: Vec<f32> = random_vec(n_out, &mut rng);
            let d_y: Vec<f32> = random_vec(batch * n_out, &mut rng);
            let (mut y, mut y_ref) = (vec![0.0; batch * n_out], vec![0.0; batch * n_out]);
            dense::forward(k, batch, &x, &w, &b, &mut y);
            crate::layers::dense::forward(batch, &x, &w, &b, &mut y_ref);
            let tol = 1e-5 * (n_in as f32).sqrt();
            close(&y, &y_ref, tol, &format!("{k:?} forward {n_out}"));
            let mut g = [vec![0.0; batch * n_in], vec![0.0; n_out * n_in], vec![0.0; n_out]];
            let mut g_ref = g.clone();
            let [d_x, d_w, d_b] = &mut g;
            dense::backward(k, batch, &x, &w, &d_y, Some(d_x), d_w, d_b);
            let [d_x, d_w, d_b] = &mut g_ref;
            crate::layers::dense::backward(batch, &x, &w, &d_y, Some(d_x), d_w, d_b);
            for (got, want) in g.iter().zip(&g_ref) {
                close(got, want, tol, &format!("{k:?} backward {n_out}"));
            }
        }
    }
}

/// The engine's convolution with ReLU against the textbook's convolution and
/// ReLU, on every kernel size of the report and each strategy: forward, and
/// ∂W, ∂b from a given and from a block-by-block computed ∂L/∂h.
#[test]
fn conv_relu_matches_the_textbook_layers_on_every_strategy() {
    let mut rng = Rng::new(42, 0);
    let mut seen = Vec::new();
    for k in levels() {
        for kernel in [3, 5, 7, 11] {
            for filters in [1, 3, 8] {
                let batch = 9;
                let shape = Shape {
                    side: 28,
                    kernel,
                    filters,
                };
                let c = Conv2d {
                    side: 28,
                    kernel,
                    filters,
                };
                let conv = ConvRelu::new(shape, k);
                seen.push(conv.strategy());
                let x: Vec<f32> = random_vec(batch * 784, &mut rng);
                let w: Vec<f32> = random_vec(filters * kernel * kernel, &mut rng);
                let bias: Vec<f32> = random_vec(filters, &mut rng);
                let what = format!("{k:?} {:?} K={kernel} F={filters}", conv.strategy());

                let mut h_ref = vec![0.0; batch * c.out_len()];
                c.forward(batch, &x, &w, Some(&bias), &mut c.scratch(), &mut h_ref);
                relu::forward(&mut h_ref);
                let mut scratch = conv.scratch(batch, 2);
                let mut h = vec![0.0; h_ref.len()];
                conv.forward(batch, &x, (&w, Some(&bias)), None, &mut scratch, &mut h);
                close(&h, &h_ref, 1e-4, &format!("{what} forward"));

                let d_h: Vec<f32> = random_vec(h.len(), &mut rng);
                let mut delta = d_h.clone();
                relu::backward(&h_ref, &mut delta);
                let (mut d_w_ref, mut d_b_ref) = (vec![0.0; w.len()], vec![0.0; filters]);
                let mut cs = c.scratch();
                c.backward(
                    batch,
                    &x,
                    &w,
                    &delta,
                    &mut cs,
                    &mut d_w_ref,
                    Some(&mut d_b_ref),
                    None,
                );
                let tol = 2e-5 * ((batch * c.positions()) as f32).sqrt();
                let (mut d_w, mut d_b) = (vec![0.0; w.len()], vec![0.0; filters]);
                let source = DeltaSource::Given(&mut d_h.clone());
                conv.backward(batch, &x, &h, source, &mut scratch, (&mut d_w, Some(&mut d_b)));
                close(&d_w, &d_w_ref, tol, &format!("{what} ∂W"));
                close(&d_b, &d_b_ref, tol, &format!("{what} ∂b"));
                let out = c.out_len();
                let next = |first: usize, rows: &mut [f32]| {
                    rows.copy_from_slice(&d_h[first * out..first * out + rows.len()]);
                };
                let (mut d_w2, mut d_b2) = (vec![0.0; w.len()], vec![0.0; filters]);
                let source = DeltaSource::Computed(&next);
                conv.backward(batch, &x, &h, source, &mut scratch, (&mut d_w2, Some(&mut d_b2)));
                assert_eq!(d_w2, d_w, "{what}: computed ∂L/∂h gives the bits of a given one");
                assert_eq!(d_b2, d_b, "{what}");
            }
        }
    }
    for s in [Strategy::Direct, Strategy::Shifted, Strategy::Im2col] {
        assert!(seen.contains(&s), "{s:?} was not tested");
    }
}
