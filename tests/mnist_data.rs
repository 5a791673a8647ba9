//! The real MNIST files: counts, checksums, pixel statistics, class histograms.

mod common;

use scratchnet::data::batches::{Normalize, Samples};
use scratchnet::data::mnist::{Dataset, Split, Verify, load_split};

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn real_mnist_has_the_official_counts_checksums_and_statistics() {
    let Some(dir) = common::mnist_dir("real_mnist_has_the_official_counts_checksums_and_statistics") else {
        return;
    };
    // Verify::Checksum fails unless the decompressed content is the official one.
    let train = load_split(&dir, Dataset::Mnist, Split::Train, Verify::Checksum).unwrap();
    let test = load_split(&dir, Dataset::Mnist, Split::Test, Verify::Checksum).unwrap();
    assert_eq!(train.count, 60_000);
    assert_eq!(test.count, 10_000);

    let unit = Samples::from_raw(&train, Normalize::Unit);
    let n = unit.x.len() as f64;
    let mean = unit.x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let std = (unit.x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((mean - 0.1307).abs() < 5e-5, "mean {mean}");
    assert!((std - 0.3081).abs() < 5e-5, "std {std}");

    // Standardised training inputs have mean ≈ 0 and std ≈ 1.
    let standard = Samples::from_raw(&train, Normalize::Standard);
    let m2 = standard.x.iter().map(|&v| v as f64).sum::<f64>() / n;
    assert!(m2.abs() < 1e-3, "standardised mean {m2}");

    for (samples, total) in [
        (&unit, 60_000),
        (&Samples::from_raw(&test, Normalize::Unit), 10_000),
    ] {
        let counts = samples.class_counts();
        assert_eq!(counts.iter().sum::<usize>(), total);
        assert!(counts.iter().all(|&c| c > total / 20), "{counts:?}");
    }
    // Published class counts of the training set (digit 1 is the most common).
    assert_eq!(unit.class_counts()[1], 6742);
    assert_eq!(unit.class_counts()[5], 5421);
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn data_command_summarises_the_folder() {
    let Some(dir) = common::mnist_dir("data_command_summarises_the_folder") else {
        return;
    };
    let o = common::scratchnet(&["data", "--data-dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let out = common::stdout(&o);
    assert!(out.contains("training set: 60000 images"), "{out}");
    assert!(out.contains("test set: 10000 images"), "{out}");
    assert!(out.contains("mean 0.1307, std 0.3081"), "{out}");
    assert!(out.contains("checksums: OK"), "{out}");
}
