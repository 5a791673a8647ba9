//! The data a command needs: made sure to be there (downloaded when asked),
//! read once and normalised on demand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use scratchnet::data::batches::{Normalize, Samples};
use scratchnet::data::mnist::{FileKind, RawSplit, Split, load_split, locate, require};
use scratchnet::run::Data;

use super::DataArgs;

/// Makes sure the data folder holds the four files, downloading them when
/// `--download` is given; otherwise the error says how to get them.
pub fn ensure_data(data: &DataArgs) -> Result<()> {
    ensure_files(data, &FileKind::ALL)
}

/// [`ensure_data`] for some of the four files.
pub fn ensure_files(data: &DataArgs, kinds: &[FileKind]) -> Result<()> {
    let dir = data.dir();
    let missing = kinds.iter().any(|&k| locate(&dir, k).is_none());
    if missing {
        if data.download {
            super::download::fetch(data, Duration::from_secs(30), Duration::from_secs(300), false)?;
        } else {
            for &k in kinds {
                require(&dir, data.dataset(), k)?;
            }
        }
    }
    Ok(())
}

/// The dataset read once, normalised on demand (once per normalisation).
pub struct DataCache {
    args: DataArgs,
    train: RawSplit,
    test: RawSplit,
    normalised: Mutex<Vec<Arc<Data>>>,
}

impl DataCache {
    pub fn new(args: &DataArgs) -> Result<Self> {
        ensure_data(args)?;
        let dir = args.dir();
        Ok(DataCache {
            args: args.clone(),
            train: load_split(&dir, args.dataset(), Split::Train, args.verify())?,
            test: load_split(&dir, args.dataset(), Split::Test, args.verify())?,
            normalised: Mutex::new(Vec::new()),
        })
    }

    pub fn get(&self, normalize: Normalize) -> Result<Arc<Data>> {
        let mut cache = self
            .normalised
            .lock()
            .map_err(|_| anyhow::anyhow!("data cache poisoned"))?;
        if let Some(d) = cache.iter().find(|d| d.normalize == normalize) {
            return Ok(d.clone());
        }
        let d = Arc::new(Data {
            dataset: self.args.dataset(),
            dir: self.args.dir(),
            normalize,
            train: Samples::from_raw(&self.train, normalize),
            test: Samples::from_raw(&self.test, normalize),
        });
        cache.push(d.clone());
        Ok(d)
    }
}
