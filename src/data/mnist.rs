//! The two datasets in MNIST's format (MNIST and Fashion-MNIST): their file
//! names in both spellings, official checksums, mirrors, where they are kept,
//! and loading them into validated images and labels.

use std::path::{Path, PathBuf};

use super::idx::{IdxError, read_idx_file};

/// Image side length; MNIST images are 28×28.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// Number of classes.
pub const CLASSES: usize = 10;

/// Environment variable naming the root folder of the datasets.
pub const DATA_DIR_ENV: &str = "SCRATCHNET_DATA_DIR";

/// A dataset in MNIST's IDX format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    Mnist,
    FashionMnist,
}

/// One of the four files of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    TrainImages,
    TrainLabels,
    TestImages,
    TestLabels,
}

/// Training or test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Dataset {
    /// Its subfolder of the data root (the file names of the two datasets collide).
    pub fn dir_name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Dataset::Mnist => "MNIST",
            Dataset::FashionMnist => "Fashion-MNIST",
        }
    }

    /// Default download mirrors, tried in order; each is a URL prefix to which
    /// the gzip file name is appended.
    pub fn mirrors(self) -> &'static [&'static str] {
        match self {
            Dataset::Mnist => &[
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ],
            Dataset::FashionMnist => &[
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
            ],
        }
    }

    /// SHA-256 of the decompressed file (the official content).
    pub fn sha256(self, kind: FileKind) -> &'static str {
        use FileKind::*;
        match (self, kind) {
            (Dataset::Mnist, TrainImages) => {
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
            }
            (Dataset::Mnist, TrainLabels) => {
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
            }
            (Dataset::Mnist, TestImages) => {
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
            }
            (Dataset::Mnist, TestLabels) => {
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
            }
            (Dataset::FashionMnist, TrainImages) => {
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
            }
            (Dataset::FashionMnist, TrainLabels) => {
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
            }
            (Dataset::FashionMnist, TestImages) => {
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
            }
            (Dataset::FashionMnist, TestLabels) => {
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
            }
        }
    }

    /// Names of the ten classes.
    pub fn class_names(self) -> [&'static str; CLASSES] {
        match self {
            Dataset::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Dataset::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// Where this dataset's four files are: `data_dir` when given, else
    /// `ROOT/<dataset>/` with ROOT = `$SCRATCHNET_DATA_DIR`, else the user's
    /// cache directory `…/scratchnet`.
    pub fn resolve_dir(self, data_dir: Option<&Path>) -> PathBuf {
        if let Some(d) = data_dir {
            return d.to_path_buf();
        }
        let root = match std::env::var_os(DATA_DIR_ENV) {
            Some(r) if !r.is_empty() => PathBuf::from(r),
            _ => dirs::cache_dir()
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("scratchnet"),
        };
        root.join(self.dir_name())
    }
}

impl FileKind {
    pub const ALL: [FileKind; 4] = [
        FileKind::TrainImages,
        FileKind::TrainLabels,
        FileKind::TestImages,
        FileKind::TestLabels,
    ];

    pub fn images(split: Split) -> Self {
        match split {
            Split::Train => FileKind::TrainImages,
            Split::Test => FileKind::TestImages,
        }
    }

    pub fn labels(split: Split) -> Self {
        match split {
            Split::Train => FileKind::TrainLabels,
            Split::Test => FileKind::TestLabels,
        }
    }

    fn stem(self) -> &'static str {
        match self {
            FileKind::TrainImages => "train-images",
            FileKind::TrainLabels => "train-labels",
            FileKind::TestImages => "t10k-images",
            FileKind::TestLabels => "t10k-labels",
        }
    }

    fn idx_suffix(self) -> &'static str {
        match self {
            FileKind::TrainImages | FileKind::TestImages => "idx3-ubyte",
            FileKind::TrainLabels | FileKind::TestLabels => "idx1-ubyte",
        }
    }

    /// The official name, without compression: `train-images-idx3-ubyte`.
    pub fn file_name(self) -> String {
        format!("{}-{}", self.stem(), self.idx_suffix())
    }

    /// The name served by mirrors: `train-images-idx3-ubyte.gz`.
    pub fn gz_name(self) -> String {
        format!("{}.gz", self.file_name())
    }

    /// Every accepted name, in order of preference: hyphen and dot spellings,
    /// gzip and raw.
    pub fn candidate_names(self) -> [String; 4] {
        let hyphen = self.file_name();
        let dot = format!("{}.{}", self.stem(), self.idx_suffix());
        [format!("{hyphen}.gz"), hyphen, format!("{dot}.gz"), dot]
    }

    /// A description for messages: "training images".
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::TrainImages => "training images",
            FileKind::TrainLabels => "training labels",
            FileKind::TestImages => "test images",
            FileKind::TestLabels => "test labels",
        }
    }
}

/// The first existing file of `kind` in `dir`, under any accepted name.
pub fn locate(dir: &Path, kind: FileKind) -> Option<PathBuf> {
    kind.candidate_names()
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Why a dataset could not be loaded. Every variant names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file of the dataset is not in the folder; the message says how to get it.
    #[error("{message}")]
    Missing { dir: PathBuf, message: String },
    #[error(transparent)]
    Idx(#[from] IdxError),
    #[error(
        "{}: checksum mismatch: the decompressed content has SHA-256 {found}, the official {dataset} {what} have {expected}. {advice}",
        path.display()
    )]
    Checksum {
        path: PathBuf,
        dataset: &'static str,
        what: &'static str,
        expected: &'static str,
        found: String,
        /// What to do: depends on whether the file is another dataset's.
        advice: String,
    },
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
}

/// Whether loaded files are checked against the official checksums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    Checksum,
    Skip,
}

/// Images and labels of one split, as stored (pixels 0–255).
#[derive(Debug, Clone)]
pub struct RawSplit {
    pub count: usize,
    /// `count × 784` pixels, row-major.
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
    pub images_path: PathBuf,
    pub labels_path: PathBuf,
}

/// Finds a file of `kind` in `dir` or says how to get it.
pub fn require(dir: &Path, dataset: Dataset, kind: FileKind) -> Result<PathBuf, DataError> {
    locate(dir, kind).ok_or_else(|| DataError::Missing {
        dir: dir.to_path_buf(),
        message: format!(
            "{dataset} {what} not found in {dir} (looked for {names}).{hint}\n\
             Get the data with `scratchnet download{flag}`, or pass --download to fetch it now, \
             or point --data-dir at the folder that holds the four files \
             (or ${env} at the folder above its {sub}/).",
            dataset = dataset.display_name(),
            what = kind.describe(),
            dir = dir.display(),
            names = kind.candidate_names().join(", "),
            hint = one_level_off(dir, dataset),
            flag = match dataset {
                Dataset::Mnist => "",
                Dataset::FashionMnist => " --dataset fashion-mnist",
            },
            env = DATA_DIR_ENV,
            sub = dataset.dir_name(),
        ),
    })
}

/// Whether `dir` holds a file of each of the four kinds.
pub fn holds_all(dir: &Path) -> bool {
    FileKind::ALL.iter().all(|&k| locate(dir, k).is_some())
}

/// A "did you mean" for a folder one level off: the files are in
/// `dir/<dataset>/` (the parent was given) or in `dir`'s parent (the
/// dataset folder was given where its parent was expected).
fn one_level_off(dir: &Path, dataset: Dataset) -> String {
    let below = dir.join(dataset.dir_name());
    let candidate = if holds_all(&below) {
        below
    } else if let Some(parent) = dir.parent().filter(|p| holds_all(p)) {
        parent.to_path_buf()
    } else {
        return String::new();
    };
    let root = candidate.parent().unwrap_or(Path::new("."));
    format!(
        "\nDid you mean {c}? It holds the four files: pass --data-dir {c}, or set {env}={r}.",
        c = candidate.display(),
        r = root.display(),
        env = DATA_DIR_ENV
    )
}

/// Reads one file of `kind` and checks its checksum.
pub fn read_checked(
    path: &Path,
    dataset: Dataset,
    kind: FileKind,
    verify: Verify,
) -> Result<super::idx::IdxArray, DataError> {
    let array = read_idx_file(path)?;
    if verify == Verify::Checksum && array.sha256 != dataset.sha256(kind) {
        return Err(DataError::Checksum {
            path: path.to_path_buf(),
            dataset: dataset.display_name(),
            what: kind.describe(),
            expected: dataset.sha256(kind),
            advice: checksum_advice(dataset, kind, &array.sha256),
            found: array.sha256,
        });
    }
    Ok(array)
}

/// Advice for a file whose checksum is not `dataset`'s: a valid copy of
/// another dataset's file is never to be deleted.
fn checksum_advice(dataset: Dataset, kind: FileKind, found: &str) -> String {
    let other = [Dataset::Mnist, Dataset::FashionMnist]
        .into_iter()
        .find(|&d| d != dataset && d.sha256(kind) == found);
    match other {
        Some(o) => format!(
            "It is a valid copy of the {o} {what}: this folder holds {o}, not {d}. Keep it, and point \
             --data-dir at a folder holding {d} (or pass --dataset {flag} to use {o}).",
            o = o.display_name(),
            d = dataset.display_name(),
            what = kind.describe(),
            flag = o.dir_name()
        ),
        None => "Delete the file and run `scratchnet download`, or pass --skip-checksum to use modified data on purpose."
            .to_string(),
    }
}

/// Loads and validates one split of `dataset` from `dir`: images must be
/// N×28×28, labels N values in 0–9, and the two counts must agree.
pub fn load_split(dir: &Path, dataset: Dataset, split: Split, verify: Verify) -> Result<RawSplit, DataError> {
    let images_path = require(dir, dataset, FileKind::images(split))?;
    let labels_path = require(dir, dataset, FileKind::labels(split))?;
    let images = read_checked(&images_path, dataset, FileKind::images(split), verify)?;
    let labels = read_checked(&labels_path, dataset, FileKind::labels(split), verify)?;
    validate_split(images, labels, images_path, labels_path)
}

/// Checks shapes, label range and counts of decoded image and label arrays.
pub fn validate_split(
    images: super::idx::IdxArray,
    labels: super::idx::IdxArray,
    images_path: PathBuf,
    labels_path: PathBuf,
) -> Result<RawSplit, DataError> {
    let invalid = |path: &Path, problem: String| DataError::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    if images.dims.len() != 3 || images.dims[1] != SIDE || images.dims[2] != SIDE {
        return Err(invalid(
            &images_path,
            format!(
                "images must have dimensions N×28×28, the header declares {:?}",
                images.dims
            ),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(invalid(
            &labels_path,
            format!(
                "labels must have one dimension N, the header declares {:?}",
                labels.dims
            ),
        ));
    }
    let count = images.dims[0];
    if labels.dims[0] != count {
        return Err(invalid(
            &labels_path,
            format!(
                "{} labels but {} holds {} images; the counts must agree",
                labels.dims[0],
                images_path.display(),
                count
            ),
        ));
    }
    if let Some((i, &v)) = labels
        .data
        .iter()
        .enumerate()
        .find(|&(_, &v)| v as usize >= CLASSES)
    {
        return Err(invalid(
            &labels_path,
            format!("label {i} is {v}; labels must be 0–9"),
        ));
    }
    if count == 0 {
        return Err(invalid(&images_path, "the file holds no images".to_string()));
    }
    Ok(RawSplit {
        count,
        pixels: images.data,
        labels: labels.data,
        images_path,
        labels_path,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::idx::tests::{gzip, idx_bytes};

    /// Writes a synthetic split: `n` images whose pixels encode their index,
    /// labels `i % 10`.
    pub fn write_split(dir: &Path, split: Split, n: usize, gz: bool) {
        let pixels: Vec<u8> = (0..n * PIXELS)
            .map(|i| ((i / PIXELS) * 7 + i % 13) as u8)
            .collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let img = idx_bytes(&[n as u32, 28, 28], &pixels);
        let lab = idx_bytes(&[n as u32], &labels);
        for (kind, bytes) in [(FileKind::images(split), img), (FileKind::labels(split), lab)] {
            if gz {
                std::fs::write(dir.join(kind.gz_name()), gzip(&bytes)).unwrap();
            } else {
                std::fs::write(dir.join(kind.file_name()), bytes).unwrap();
            }
        }
    }

    #[test]
    fn loads_synthetic_split_and_rejects_checksum() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), Split::Train, 5, true);
        let s = load_split(dir.path(), Dataset::Mnist, Split::Train, Verify::Skip).unwrap();
        assert_eq!(s.count, 5);
        assert_eq!(s.labels, vec![0, 1, 2, 3, 4]);
        let e = load_split(dir.path(), Dataset::Mnist, Split::Train, Verify::Checksum)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("train-images-idx3-ubyte.gz") && e.contains("checksum mismatch"),
            "{e}"
        );
        assert!(e.contains(Dataset::Mnist.sha256(FileKind::TrainImages)), "{e}");
    }

    #[test]
    fn accepts_dot_spelling_raw() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), Split::Test, 3, false);
        for kind in [FileKind::TestImages, FileKind::TestLabels] {
            let from = dir.path().join(kind.file_name());
            let to = dir.path().join(kind.file_name().replacen("-idx", ".idx", 1));
            std::fs::rename(from, to).unwrap();
        }
        let s = load_split(dir.path(), Dataset::Mnist, Split::Test, Verify::Skip).unwrap();
        assert_eq!(s.count, 3);
        assert!(s.images_path.ends_with("t10k-images.idx3-ubyte"));
    }

    #[test]
    fn missing_data_says_how_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_split(dir.path(), Dataset::FashionMnist, Split::Train, Verify::Skip)
            .unwrap_err()
            .to_string();
        assert!(e.contains("scratchnet download --dataset fashion-mnist"), "{e}");
        assert!(
            e.contains("--data-dir") && e.contains(&dir.path().display().to_string()),
            "{e}"
        );
    }

    fn expect_invalid(
        img_dims: &[u32],
        img: &[u8],
        lab_dims: &[u32],
        lab: &[u8],
        needle: &str,
        in_file: &str,
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            idx_bytes(img_dims, img),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            idx_bytes(lab_dims, lab),
        )
        .unwrap();
        let e = load_split(dir.path(), Dataset::Mnist, Split::Train, Verify::Skip)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle) && e.contains(in_file), "{e}");
    }

    #[test]
    fn rejects_wrong_shapes_counts_and_labels() {
        let px = vec![0u8; 2 * PIXELS];
        expect_invalid(
            &[2, 28, 27],
            &px[..2 * 28 * 27],
            &[2],
            &[1, 2],
            "N×28×28",
            "train-images",
        );
        expect_invalid(&[2 * 784], &px, &[2], &[1, 2], "N×28×28", "train-images");
        expect_invalid(
            &[2, 28, 28],
            &px,
            &[3],
            &[1, 2, 3],
            "counts must agree",
            "train-labels",
        );
        expect_invalid(&[2, 28, 28], &px, &[2], &[1, 10], "label 1 is 10", "train-labels");
        expect_invalid(
            &[2, 28, 28],
            &px,
            &[2, 1],
            &[1, 2],
            "one dimension",
            "train-labels",
        );
    }
}
