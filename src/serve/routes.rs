//! The API's routes: each request becomes one JSON answer (or an embedded
//! asset). A handler that fails says why in `{"error": …}` with its status;
//! a handler that panics is answered 500 and the server goes on.
//!
//! ```text
//! GET  /api/runs                      the runs served, the default model, sweep tables
//! GET  /api/runs/{run}/history        a run's history.csv as JSON (reread at each request)
//! GET  /api/model?run=R               spec, normalisation, dataset, metrics, config
//! GET  /api/weights?run=R             weights as tiles or filters, and the output layer
//! POST /api/predict?run=R             image body → digit, probabilities, prepared pixels
//! POST /api/inside?run=R              image body → hidden activations or feature maps
//! GET  /api/confusion?run=R&limit=N   test-set confusion matrix and the N most confident mistakes
//! GET  /api/confusion/cell?run=R&label=A&predicted=B&limit=N   the test images of one cell
//! ```
//! `run` may be left out: the default model is the served one, or in a folder
//! of runs the one with the best final test accuracy.

use std::collections::HashMap;
use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response};

use super::catalog::Entry;
use super::model::{AnswersJson, Loaded};
use super::{MAX_BODY, State, assets};
use crate::data::mnist::{CLASSES, PIXELS};
use crate::prepare::{Invert, NoDigit, Prepared, Style, decode, prepare};

/// The largest `history.csv` read (a run of a million epochs is far smaller).
const MAX_HISTORY_BYTES: u64 = 16 << 20;

/// A failed request: its status and what to tell the caller.
#[derive(Debug)]
pub struct Fail(pub u16, pub String);

type Answer = Result<Value, Fail>;

fn fail<T>(status: u16, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail(status, message.into()))
}

/// A reply's status, type and body.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }
    fn error(Fail(status, message): Fail) -> Reply {
        Reply::json(status, &json!({ "error": message }))
    }
}

/// Answers one request.
pub fn answer(state: &State, mut request: Request) {
    let reply =
        std::panic::catch_unwind(AssertUnwindSafe(|| route(state, &mut request))).unwrap_or_else(|_| {
            Reply::error(Fail(
                500,
                "internal error: this request could not be answered".into(),
            ))
        });
    let header = |k: &str, v: &str| Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("ASCII header");
    let response = Response::from_data(reply.body)
        .with_status_code(reply.status)
        .with_header(header("Content-Type", reply.content_type))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"));
    // The client may have gone; nothing to do then.
    let _ = request.respond(response);
}

fn route(state: &State, request: &mut Request) -> Reply {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let query: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let method = request.method().clone();
    let get = method == Method::Get || method == Method::Head;
    let post = method == Method::Post;
    if get && let Some((content_type, body)) = assets::find(path) {
        return Reply {
            status: 200,
            content_type,
            body: body.to_vec(),
        };
    }
    let result = match path {
        "/api/runs" if get => runs(state),
        p if get && p.starts_with("/api/runs/") && p.ends_with("/history") => {
            let name = &p["/api/runs/".len()..p.len() - "/history".len()];
            history(state, &percent_decoded(name))
        }
        "/api/model" if get => with_model(state, &query, |id, m| Ok(m.describe(id))),
        "/api/weights" if get => with_model(state, &query, |_, m| Ok(m.weights())),
        "/api/predict" if post => {
            body(request).and_then(|b| with_model(state, &query, |id, m| predict(id, m, &b)))
        }
        "/api/inside" if post => {
            body(request).and_then(|b| with_model(state, &query, |id, m| inside(id, m, &b)))
        }
        "/api/confusion" if get => confusion(state, &query),
        "/api/confusion/cell" if get => cell(state, &query),
        "/api/runs" | "/api/model" | "/api/weights" | "/api/confusion" | "/api/confusion/cell" => {
            fail(405, format!("{path} answers GET, not {method}"))
        }
        "/api/predict" | "/api/inside" => fail(
            405,
            format!("{path} answers POST with an image body, not {method}"),
        ),
        _ => fail(404, format!("no such page or API path: {path}")),
    };
    match result {
        Ok(v) => Reply::json(200, &v),
        Err(f) => Reply::error(f),
    }
}

fn percent_decoded(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(String::new, |(_, v)| v.into_owned())
}

/// The request's body, at most [`MAX_BODY`] bytes.
fn body(request: &mut Request) -> Result<Vec<u8>, Fail> {
    let too_large = || {
        fail(
            413,
            format!(
                "the request body is larger than the {} MB accepted",
                MAX_BODY >> 20
            ),
        )
    };
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return too_large();
    }
    let mut bytes = Vec::new();
    if let Err(e) = request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut bytes)
    {
        return fail(400, format!("the request body could not be read: {e}"));
    }
    if bytes.len() > MAX_BODY {
        return too_large();
    }
    if bytes.is_empty() {
        return fail(400, "the request has no body: send a PNG or JPEG image");
    }
    Ok(bytes)
}

/// The run a request names (`run=`), else the default one; 404 when it is
/// not among the runs served now.
fn chosen(state: &State, query: &HashMap<String, String>) -> Result<Entry, Fail> {
    let entries = state.root.scan();
    match query.get("run") {
        Some(id) => match entries.into_iter().find(|e| &e.id == id) {
            Some(e) => Ok(e),
            None => fail(404, format!("no run named {id:?} is served")),
        },
        None => match default_model(&entries) {
            Some(e) => Ok(e.clone()),
            None => fail(
                404,
                "no model is served yet (no run here has a model.safetensors)",
            ),
        },
    }
}

/// The model shown when a request names none: the best final test accuracy
/// among the runs with a model (the first of equals), else the first.
fn default_model(entries: &[Entry]) -> Option<&Entry> {
    let with_model = || entries.iter().filter(|e| e.model.is_some());
    let score = |e: &Entry| final_record(e).map(|r| r.test_accuracy).filter(|a| a.is_finite());
    let mut best: Option<(&Entry, f64)> = None;
    for e in with_model() {
        if let Some(a) = score(e)
            && best.is_none_or(|(_, b)| a > b)
        {
            best = Some((e, a));
        }
    }
    best.map(|(e, _)| e).or_else(|| with_model().next())
}

fn read_history(path: &std::path::Path) -> Result<Vec<crate::train::EpochRecord>, Fail> {
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    if len > MAX_HISTORY_BYTES {
        return fail(
            500,
            format!(
                "{}: larger than {} MB, not read",
                path.display(),
                MAX_HISTORY_BYTES >> 20
            ),
        );
    }
    crate::run::read_history(path).map_err(|e| Fail(500, format!("{e:#}")))
}

fn final_record(e: &Entry) -> Option<crate::train::EpochRecord> {
    read_history(e.history.as_deref()?).ok()?.pop()
}

fn with_model(
    state: &State,
    query: &HashMap<String, String>,
    f: impl FnOnce(&str, &Loaded) -> Answer,
) -> Answer {
    let entry = chosen(state, query)?;
    let Some(path) = &entry.model else {
        return fail(404, format!("run {:?} has no model.safetensors yet", entry.id));
    };
    let m = state
        .model(path)
        .map_err(|e| Fail(500, format!("cannot read the model: {e:#}")))?;
    f(&entry.id, &m)
}

/// `GET /api/runs`.
fn runs(state: &State) -> Answer {
    let entries = state.root.scan();
    let default = default_model(&entries).map(|e| e.id.clone());
    let runs: Vec<Value> = entries
        .iter()
        .map(|e| {
            let last = final_record(e);
            let config = e
                .config
                .as_deref()
                .and_then(|p| crate::atomic::read_bounded(p, 1 << 20).ok())
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            let description = config
                .as_ref()
                .and_then(|c| serde_json::from_value::<crate::models::ModelSpec>(c["model"].clone()).ok())
                .map(|s| s.describe());
            json!({
                "id": e.id,
                "has_model": e.model.is_some(),
                "has_history": e.history.is_some(),
                "training": e.training,
                "modified_ms": e.modified_ms,
                "description": description,
                "epochs_done": last.as_ref().map(|r| r.epoch),
                "epochs": config.as_ref().and_then(|c| c["settings"]["epochs"].as_u64()),
                "test_accuracy": last.as_ref().map(|r| r.test_accuracy).filter(|a| a.is_finite()),
                "validation_accuracy": last.as_ref().and_then(|r| r.validation_accuracy),
            })
        })
        .collect();
    Ok(json!({
        "root": state.root.path().display().to_string(),
        "default": default,
        "runs": runs,
        "tables": tables(state),
    }))
}

/// The sweep tables (`results.csv`) in the served folder and the folders
/// just below it.
fn tables(state: &State) -> Vec<Value> {
    let super::Root::Folder(dir) = &state.root else {
        return Vec::new();
    };
    let mut folders: Vec<(String, PathBuf)> = vec![(".".into(), dir.clone())];
    if let Ok(read) = std::fs::read_dir(dir) {
        let mut sub: Vec<(String, PathBuf)> = read
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .filter(|(n, _)| !n.starts_with('.'))
            .collect();
        sub.sort();
        folders.extend(sub);
    }
    folders
        .into_iter()
        .filter_map(|(name, folder)| {
            let path = folder.join("results.csv");
            let meta = std::fs::symlink_metadata(&path).ok().filter(|m| m.is_file())?;
            let bytes = crate::atomic::read_bounded(&path, (1 << 20).min(meta.len().max(1))).ok()?;
            let text = String::from_utf8_lossy(&bytes);
            let mut lines = text
                .lines()
                .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
            let header = lines.next()?;
            Some(json!({ "folder": name, "header": header, "rows": lines.collect::<Vec<_>>() }))
        })
        .collect()
}

/// `GET /api/runs/{run}/history`.
fn history(state: &State, id: &str) -> Answer {
    let Some(entry) = state.root.find(id) else {
        return fail(404, format!("no run named {id:?} is served"));
    };
    let records = match &entry.history {
        Some(p) => read_history(p)?,
        None => Vec::new(),
    };
    Ok(json!({
        "run": entry.id,
        "training": entry.training,
        "modified_ms": entry.modified_ms,
        "epochs": records,
    }))
}

/// The posted image prepared like the model's dataset; `None` when it holds
/// no digit.
fn prepared(m: &Loaded, bytes: &[u8]) -> Result<Result<Prepared, NoDigit>, Fail> {
    let grid = decode(bytes).map_err(|e| Fail(400, format!("the body is not an image: {e:#}")))?;
    Ok(prepare(&grid, Invert::Auto, Style::of(m.ckpt.dataset)))
}

fn no_digit(id: &str, why: NoDigit) -> Value {
    json!({ "run": id, "digit": null, "message": why.to_string() })
}

/// `POST /api/predict`.
fn predict(id: &str, m: &Loaded, bytes: &[u8]) -> Answer {
    let p = match prepared(m, bytes)? {
        Ok(p) => p,
        Err(why) => return Ok(no_digit(id, why)),
    };
    let probs = m.probabilities(&p.pixels, 1);
    let digit = crate::layers::softmax_ce::argmax(&probs);
    Ok(json!({
        "run": id,
        "digit": digit,
        "class_name": m.ckpt.dataset.class_names()[digit],
        "probabilities": probs,
        "prepared": p.pixels.to_vec(),
        "inverted": p.inverted,
        "thickened": p.thickened,
    }))
}

/// `POST /api/inside`.
fn inside(id: &str, m: &Loaded, bytes: &[u8]) -> Answer {
    let p = match prepared(m, bytes)? {
        Ok(p) => p,
        Err(why) => return Ok(no_digit(id, why)),
    };
    let mut v = m.inside(&p.pixels);
    v["run"] = json!(id);
    v["prepared"] = json!(p.pixels.to_vec());
    Ok(v)
}

/// A bounded count from the query, or its default.
fn count(query: &HashMap<String, String>, name: &str, default: usize, max: usize) -> Result<usize, Fail> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            _ => fail(
                400,
                format!("{name}={v:?}: expected a whole number from 0 to {max}"),
            ),
        },
    }
}

fn class(query: &HashMap<String, String>, name: &str) -> Result<u8, Fail> {
    match query.get(name).map(|v| (v, v.parse::<usize>())) {
        Some((_, Ok(k))) if k < CLASSES => Ok(k as u8),
        Some((v, _)) => fail(400, format!("{name}={v:?}: expected a class from 0 to 9")),
        None => fail(400, format!("{name} is missing: expected a class from 0 to 9")),
    }
}

fn answers_of(
    state: &State,
    query: &HashMap<String, String>,
) -> Result<
    (
        Entry,
        std::sync::Arc<super::Answers>,
        std::sync::Arc<crate::data::mnist::RawSplit>,
    ),
    Fail,
> {
    let entry = chosen(state, query)?;
    let Some(path) = &entry.model else {
        return fail(404, format!("run {:?} has no model.safetensors yet", entry.id));
    };
    let (a, test) = state
        .answers(path)
        .map_err(|e| Fail(503, format!("the test set is not available: {e:#}")))?;
    if test.pixels.len() < test.count * PIXELS || a.labels.len() != test.count {
        return fail(500, "the test set and its answers disagree in size");
    }
    Ok((entry, a, test))
}

/// `GET /api/confusion`.
fn confusion(state: &State, query: &HashMap<String, String>) -> Answer {
    let limit = count(query, "limit", 30, 500)?;
    let (entry, a, test) = answers_of(state, query)?;
    let mut v = a.summary();
    let mistakes = a.mistakes();
    v["run"] = json!(entry.id);
    v["mistakes_total"] = json!(mistakes.len());
    v["mistakes"] = mistakes.iter().take(limit).map(|&i| a.image(&test, i)).collect();
    Ok(v)
}

/// `GET /api/confusion/cell`.
fn cell(state: &State, query: &HashMap<String, String>) -> Answer {
    let (label, predicted) = (class(query, "label")?, class(query, "predicted")?);
    let limit = count(query, "limit", 60, 1000)?;
    let (entry, a, test) = answers_of(state, query)?;
    let idx = a.cell(label, predicted);
    Ok(json!({
        "run": entry.id,
        "label": label,
        "predicted": predicted,
        "total": idx.len(),
        "images": idx.iter().take(limit).map(|&i| a.image(&test, i)).collect::<Vec<_>>(),
    }))
}
