//! `scratchnet serve PATH`: a local web page that shows a trained model, and
//! the JSON API behind it.
//!
//! PATH is a model file, a run folder or a folder of runs ([`catalog`]). The
//! page ([`assets`], embedded in the binary) has four views: *Draw* (a pad
//! whose drawing is prepared like MNIST's digits and classified as it is
//! drawn), *Inside* (the hidden units' or filters' weights and what they
//! make of the drawing), *Mistakes* (the test-set confusion matrix, its
//! cells' images, the most confident mistakes) and *Training* (each run's
//! curves, reread while a run is still training).
//!
//! The API ([`routes`]) answers JSON. Request bodies are bounded
//! ([`MAX_BODY`]); every failure is a JSON `{"error": …}` with a 4xx or 5xx
//! status; a request names runs by their catalog name, never by path. The
//! server only reads what it serves.

pub mod assets;
pub mod catalog;
pub mod model;
pub mod routes;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Result, anyhow};

use crate::data::mnist::{Dataset, RawSplit, Split, Verify, load_split};
use crate::train::Answers;
pub use catalog::{Entry, Root};
use model::Loaded;

/// The largest request body accepted (a photo of a digit fits easily).
pub const MAX_BODY: usize = 8 << 20;

/// Where the test sets come from.
#[derive(Clone, Debug)]
pub struct DataSource {
    /// The folder holding a dataset's files (`--data-dir`), else each
    /// dataset's usual place.
    pub dir: Option<PathBuf>,
    pub verify: Verify,
}

/// A file's identity for caching: its length and modification time.
type Stamp = (u64, Option<SystemTime>);

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).map_or((0, None), |m| (m.len(), m.modified().ok()))
}

/// What the server knows: the served path and the models and test sets
/// read so far (each reread when its file changes).
pub struct State {
    pub root: Root,
    data: DataSource,
    models: Mutex<HashMap<PathBuf, (Stamp, Arc<Loaded>)>>,
    answers: Mutex<HashMap<PathBuf, (Stamp, Arc<Answers>)>>,
    tests: Mutex<HashMap<Dataset, Arc<RawSplit>>>,
}

impl State {
    pub fn new(root: Root, data: DataSource) -> State {
        State {
            root,
            data,
            models: Mutex::default(),
            answers: Mutex::default(),
            tests: Mutex::default(),
        }
    }

    /// The model file at `path`, read once per version of the file.
    pub fn model(&self, path: &Path) -> Result<Arc<Loaded>> {
        let now = stamp(path);
        if let Some((s, m)) = lock(&self.models).get(path)
            && *s == now
        {
            return Ok(m.clone());
        }
        let loaded = Arc::new(Loaded::load(path)?);
        lock(&self.models).insert(path.to_path_buf(), (now, loaded.clone()));
        Ok(loaded)
    }

    /// The test split of `dataset`, read once.
    pub fn test_set(&self, dataset: Dataset) -> Result<Arc<RawSplit>> {
        let mut tests = lock(&self.tests);
        if let Some(t) = tests.get(&dataset) {
            return Ok(t.clone());
        }
        let dir = dataset.resolve_dir(self.data.dir.as_deref());
        let raw = Arc::new(load_split(&dir, dataset, Split::Test, self.data.verify)?);
        tests.insert(dataset, raw.clone());
        Ok(raw)
    }

    /// The answers of the model at `path` on its dataset's test set, computed
    /// once per version of the model file.
    pub fn answers(&self, path: &Path) -> Result<(Arc<Answers>, Arc<RawSplit>)> {
        let m = self.model(path)?;
        let test = self.test_set(m.ckpt.dataset)?;
        let now = stamp(path);
        let mut answers = lock(&self.answers);
        if let Some((s, a)) = answers.get(path)
            && *s == now
        {
            return Ok((a.clone(), test));
        }
        let a = Arc::new(m.answer(&test));
        answers.insert(path.to_path_buf(), (now, a.clone()));
        Ok((a, test))
    }
}

/// A poisoned lock only means a request panicked while holding it (the
/// panic was caught); the caches stay usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bound server, not yet answering.
pub struct Server {
    http: Arc<tiny_http::Server>,
    addr: SocketAddr,
    state: Arc<State>,
}

impl Server {
    /// Binds `host:port` (port 0: any free port). A port in use is an error
    /// that says so.
    pub fn bind(host: &str, port: u16, state: State) -> Result<Server> {
        let listener = TcpListener::bind((host, port)).map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => anyhow!(
                "--port {port}: {host}:{port} is already in use by another program; choose another --port (0 picks a free one)"
            ),
            std::io::ErrorKind::AddrNotAvailable => {
                anyhow!("--host {host}: not an address of this machine ({e})")
            }
            _ => anyhow!("cannot listen on {host}:{port}: {e}"),
        })?;
        let addr = listener.local_addr()?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| anyhow!("cannot start the server on {addr}: {e}"))?;
        Ok(Server {
            http: Arc::new(http),
            addr,
            state: Arc::new(state),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Answers requests on `workers` threads until `stop` is set.
    pub fn run(&self, workers: usize, stop: &AtomicBool) {
        std::thread::scope(|s| {
            for _ in 0..workers.max(1) {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        match self.http.recv_timeout(Duration::from_millis(200)) {
                            Ok(Some(request)) => routes::answer(&self.state, request),
                            Ok(None) => {}
                            Err(e) => {
                                eprintln!("warning: a connection failed: {e}");
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                });
            }
        });
    }
}
