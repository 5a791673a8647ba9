//! What a served path holds: one model file, one run folder, or a folder of
//! runs (a sweep, a reproduction, `runs/`), found again at every request so
//! that a run started after the server shows up.
//!
//! A run is a folder holding `config.json`, `history.csv` or
//! `model.safetensors`. It is named by its path below the served folder
//! (`lr-0.1/seed-0`), and only named runs are ever read: a request names a
//! run, never a path, so nothing outside the served folder can be reached.
//! Symbolic links are not followed and hidden folders are skipped.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::run::{CONFIG_FILE, HISTORY_FILE, LOCK_FILE, MODEL_FILE};

/// How deep below the served folder runs are looked for.
pub const MAX_DEPTH: usize = 4;
/// At most this many runs are listed.
pub const MAX_RUNS: usize = 2_000;

/// One run folder, or the single model file served.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Its name in the API: the path below the served folder with `/`
    /// between parts, `.` for the served folder itself, or the model file's name.
    pub id: String,
    /// The model file, when there is one.
    pub model: Option<PathBuf>,
    /// `history.csv`, when there is one.
    pub history: Option<PathBuf>,
    /// `config.json`, when there is one.
    pub config: Option<PathBuf>,
    /// Whether a training process holds the run's lock right now.
    pub training: bool,
    /// When the history (else the model) was last rewritten, in ms since 1970.
    pub modified_ms: u64,
}

/// What `scratchnet serve PATH` serves.
#[derive(Clone, Debug)]
pub enum Root {
    /// One `.safetensors` file.
    File(PathBuf),
    /// A run folder or a folder of runs.
    Folder(PathBuf),
}

impl Root {
    /// Checks that `path` is a model file or a folder.
    pub fn new(path: &Path) -> anyhow::Result<Root> {
        let meta = std::fs::metadata(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot serve it: {e}", path.display()))?;
        if meta.is_dir() {
            Ok(Root::Folder(path.to_path_buf()))
        } else if meta.is_file() {
            Ok(Root::File(path.to_path_buf()))
        } else {
            anyhow::bail!("{}: neither a folder nor a model file", path.display())
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Root::File(p) | Root::Folder(p) => p,
        }
    }

    /// The runs (or the one model) found now, in name order.
    pub fn scan(&self) -> Vec<Entry> {
        match self {
            Root::File(path) => vec![Entry {
                id: path
                    .file_name()
                    .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned()),
                model: Some(path.clone()),
                history: None,
                config: None,
                training: false,
                modified_ms: modified_ms(path),
            }],
            Root::Folder(dir) => {
                let mut found = Vec::new();
                walk(dir, ".", 0, &mut found);
                found.sort_by(|a, b| a.id.cmp(&b.id));
                found
            }
        }
    }

    /// The entry named `id`, if it is there now.
    pub fn find(&self, id: &str) -> Option<Entry> {
        self.scan().into_iter().find(|e| e.id == id)
    }
}

fn is_file(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
}

fn modified_ms(p: &Path) -> u64 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whether another process holds the run folder's lock (asked with a shared
/// lock on the file opened read-only: nothing is written).
fn locked(dir: &Path) -> bool {
    let Ok(file) = std::fs::File::open(dir.join(LOCK_FILE)) else {
        return false;
    };
    matches!(file.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
}

fn walk(dir: &Path, id: &str, depth: usize, found: &mut Vec<Entry>) {
    if found.len() >= MAX_RUNS {
        return;
    }
    let file = |name: &str| Some(dir.join(name)).filter(|p| is_file(p));
    let (model, history, config) = (file(MODEL_FILE), file(HISTORY_FILE), file(CONFIG_FILE));
    if model.is_some() || history.is_some() || config.is_some() {
        let modified_ms = history.as_deref().or(model.as_deref()).map_or(0, modified_ms);
        found.push(Entry {
            id: id.to_string(),
            model,
            history,
            config,
            training: locked(dir),
            modified_ms,
        });
        return;
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut children: Vec<(String, PathBuf)> = read
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    children.sort();
    for (name, path) in children {
        let child = if id == "." { name } else { format!("{id}/{name}") };
        walk(&path, &child, depth + 1, found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_runs_below_the_folder_by_their_relative_names() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for run in ["a/seed-0", "a/seed-1", "b", "deep/1/2/3/4/5"] {
            std::fs::create_dir_all(d.join(run)).unwrap();
            std::fs::write(d.join(run).join(HISTORY_FILE), "epoch\n").unwrap();
        }
        std::fs::create_dir_all(d.join(".hidden")).unwrap();
        std::fs::write(d.join(".hidden").join(MODEL_FILE), "x").unwrap();
        std::fs::write(d.join("b").join(MODEL_FILE), "x").unwrap();
        std::fs::write(d.join("results.csv"), "x").unwrap();
        let root = Root::new(d).unwrap();
        let ids: Vec<String> = root.scan().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["a/seed-0", "a/seed-1", "b"]);
        let b = root.find("b").unwrap();
        assert_eq!(b.model, Some(d.join("b").join(MODEL_FILE)));
        assert!(!b.training);
        assert!(root.find("../b").is_none() && root.find("deep/1/2/3/4/5").is_none());
        // A run folder served directly is the run ".".
        let one = Root::new(&d.join("b")).unwrap();
        assert_eq!(one.scan()[0].id, ".");
    }

    #[cfg(unix)]
    #[test]
    fn does_not_follow_symbolic_links_out_of_the_folder() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join(MODEL_FILE), "x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join(MODEL_FILE),
            dir.path().join("run").join(MODEL_FILE),
        )
        .unwrap();
        assert!(Root::new(dir.path()).unwrap().scan().is_empty());
    }

    #[test]
    fn sees_a_run_whose_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(HISTORY_FILE), "epoch\n").unwrap();
        let lock = std::fs::File::create(dir.path().join(LOCK_FILE)).unwrap();
        lock.lock().unwrap();
        // flock locks belong to the open file: another open of it sees this one.
        assert!(Root::new(dir.path()).unwrap().scan()[0].training);
        lock.unlock().unwrap();
        assert!(!Root::new(dir.path()).unwrap().scan()[0].training);
    }
}
