//! `scratchnet serve`: every endpoint against a server on an ephemeral
//! 127.0.0.1 port, the bad requests, path traversal, a port in use, Ctrl-C,
//! and that nothing served is written; and the same pictures as files
//! (`scratchnet inspect --out`, `scratchnet eval --plots`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use base64::Engine;
use scratchnet::prelude::*;
use serde_json::Value;

/// A `scratchnet serve` process, killed when dropped.
struct Served {
    child: Child,
    addr: SocketAddr,
}

impl Served {
    fn start(path: &Path, extra: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scratchnet"))
            .arg("serve")
            .arg(path)
            .args(["--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("serve printed its address").unwrap();
            if let Some(rest) = line.strip_prefix("Open http://") {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Served { child, addr }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        raw(self.addr, method, path, headers, body)
    }

    fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"")
    }

    fn post(&self, path: &str, body: &[u8]) -> Reply {
        self.request("POST", path, &[("Content-Type", "image/png")], body)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        assert!(
            self.content_type.starts_with("application/json"),
            "{} is not JSON",
            self.content_type
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    /// The start of the body, for messages.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned()
    }

    /// A JSON error with this status.
    fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        self.json()["error"]
            .as_str()
            .expect("an error message")
            .to_string()
    }
}

/// One HTTP/1.1 request on its own connection, written byte for byte (so
/// that paths reach the server exactly as given).
fn raw(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before the whole body is sent.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let chunked = head.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.trim() == "chunked")
    });
    let mut body = &out[split + 4..];
    let body = if chunked {
        // size in hex, CRLF, the bytes, CRLF; a size of 0 ends it.
        let mut whole = Vec::new();
        loop {
            let eol = body
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a chunk size line");
            let size = usize::from_str_radix(std::str::from_utf8(&body[..eol]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break whole;
            }
            whole.extend_from_slice(&body[eol + 2..eol + 2 + size]);
            body = &body[eol + 4 + size..];
        }
    } else {
        body.to_vec()
    };
    Reply {
        status,
        content_type,
        body,
    }
}

/// A folder of two runs with untrained models and a history each, and a
/// sweep table.
fn runs_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, spec) in [
        ("sweep/mlp-32", ModelSpec::mlp(32)),
        ("sweep/cnn-4", ModelSpec::cnn(5, 4)),
    ] {
        let run = dir.path().join(name);
        std::fs::create_dir_all(&run).unwrap();
        Model::new(spec, 1)
            .unwrap()
            .save(&run.join("model.safetensors"))
            .unwrap();
        std::fs::write(
            run.join("history.csv"),
            "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n\
             1,0.5,0.85,0.4,0.88,1.5\n2,0.3,0.91,0.28,0.92,1.4\n",
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("sweep/results.csv"),
        "configuration,value,seeds\nmlp-32,32,1\n",
    )
    .unwrap();
    dir
}

/// A PNG of a dark vertical bar on white: a drawn 1.
fn drawn_one() -> Vec<u8> {
    let mut img = image::GrayImage::from_pixel(200, 200, image::Luma([255]));
    for y in 30..170 {
        for x in 92..108 {
            img.put_pixel(x, y, image::Luma([0]));
        }
    }
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

/// Every file below `dir` with its length and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len(), m.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn serves_the_page_its_assets_and_a_favicon() {
    let dir = runs_folder();
    let s = Served::start(dir.path(), &[]);
    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    let html = String::from_utf8(page.body).unwrap();
    for id in [
        "id=\"pad\"",
        "id=\"clear\"",
        "id=\"prediction\"",
        "id=\"confusion\"",
    ] {
        assert!(html.contains(id), "the page has {id}");
    }
    // Nothing comes from another host: no CDN.
    assert!(!html.contains("http://") && !html.contains("https://"));
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/favicon.ico", "image/svg+xml"),
    ] {
        let r = s.get(path);
        assert_eq!(
            (r.status, r.content_type.starts_with(kind)),
            (200, true),
            "{path}"
        );
        assert!(!r.body.is_empty());
    }
    // The script names no other host either (SVG's namespace is a name, not a request).
    let js = String::from_utf8(s.get("/app.js").body)
        .unwrap()
        .replace("http://www.w3.org/2000/svg", "");
    assert!(!js.contains("http://") && !js.contains("https://"));
}

#[test]
fn lists_runs_with_their_histories_models_weights_and_sweep_table() {
    let dir = runs_folder();
    let s = Served::start(dir.path(), &[]);
    let runs = s.get("/api/runs").json();
    let ids: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sweep/cnn-4", "sweep/mlp-32"]);
    assert_eq!(runs["runs"][0]["test_accuracy"], 0.92);
    assert_eq!(runs["runs"][0]["training"], false);
    assert_eq!(runs["tables"][0]["folder"], "sweep");
    assert_eq!(runs["tables"][0]["rows"][0][0], "mlp-32");
    // Equal final accuracies: the first run is the default model.
    assert_eq!(runs["default"], "sweep/cnn-4");

    let h = s.get("/api/runs/sweep%2Fmlp-32/history").json();
    let epochs = h["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    assert_eq!(epochs[1]["test_accuracy"], 0.92);
    assert_eq!(epochs[1]["test_loss"], 0.28);

    let m = s.get("/api/model?run=sweep%2Fmlp-32").json();
    assert_eq!(m["spec"]["kind"], "mlp");
    assert_eq!(m["spec"]["hidden"], 32);
    assert_eq!(m["parameters"], 784 * 32 + 32 + 32 * 10 + 10);
    assert_eq!(m["classes"].as_array().unwrap().len(), 10);

    // Weights: 32 tiles of 784 signed bytes, scaled per unit to their largest |w|.
    let w = s.get("/api/weights?run=sweep/mlp-32").json();
    let tiles = &w["input_weights"];
    assert_eq!(
        (tiles["rows"].as_u64(), tiles["cols"].as_u64()),
        (Some(32), Some(784))
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(tiles["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes.len(), 32 * 784);
    let model = Model::load(&dir.path().join("sweep/mlp-32/model.safetensors")).unwrap();
    let unit0 = &model.params[..784];
    let scale = tiles["scale"][0].as_f64().unwrap() as f32;
    assert_eq!(scale, unit0.iter().fold(0.0f32, |m, v| m.max(v.abs())));
    for (b, v) in bytes.iter().zip(unit0) {
        let back = *b as i8 as f32 / 127.0 * scale;
        assert!((back - v).abs() <= scale / 254.0 + 1e-7, "{back} vs {v}");
    }
    let w = s.get("/api/weights?run=sweep%2Fcnn-4").json();
    assert_eq!(w["kind"], "cnn");
    assert_eq!(w["conv_weights"]["rows"], 4);
    assert_eq!(w["conv_weights"]["cols"], 25);
    assert_eq!(w["output_weights"]["rows"], 10);
    assert_eq!(w["output_weights"]["cols"], 4 * 24 * 24);
}

#[test]
fn predict_answers_as_the_command_line_does_and_inside_shows_the_same_image() {
    let dir = runs_folder();
    let image = dir.path().join("one.png");
    std::fs::write(&image, drawn_one()).unwrap();
    let s = Served::start(dir.path(), &[]);
    for run in ["sweep/mlp-32", "sweep/cnn-4"] {
        let r = s.post(&format!("/api/predict?run={run}"), &drawn_one()).json();
        let probs: Vec<f64> = r["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert_eq!(probs.len(), 10);
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        let digit = r["digit"].as_u64().unwrap() as usize;
        assert!(probs.iter().all(|&p| p <= probs[digit]));
        let prepared: Vec<u64> = r["prepared"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap())
            .collect();
        assert_eq!(prepared.len(), 784);
        assert_eq!(r["inverted"], true, "dark ink on white paper is inverted");
        // The command line's answer for the same file: same class, same probability.
        let out = common::scratchnet(&[
            "predict",
            dir.path().join(run).to_str().unwrap(),
            image.to_str().unwrap(),
            "--top",
            "1",
        ]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let want = format!("{digit} ({:.3})", probs[digit]);
        assert!(
            common::stdout(&out).contains(&want),
            "{} vs {want}",
            common::stdout(&out)
        );

        let inside = s.post(&format!("/api/inside?run={run}"), &drawn_one()).json();
        assert_eq!(inside["prepared"], r["prepared"]);
        if run.contains("mlp") {
            let h: Vec<f64> = inside["hidden"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let order: Vec<usize> = inside["order"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(h.len(), 32);
            assert!(h.iter().all(|&a| a > 0.0 && a < 1.0), "sigmoid activations");
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..32).collect::<Vec<_>>());
            assert!(order.windows(2).all(|w| h[w[0]] >= h[w[1]]), "most active first");
        } else {
            assert_eq!(inside["kind"], "cnn");
            assert_eq!(inside["side"], 24);
            assert_eq!(inside["maps"]["rows"], 4);
            assert_eq!(inside["maps"]["cols"], 24 * 24);
            assert!(inside["pooled"].is_null(), "this CNN does not pool");
        }
    }
    // A blank image holds no digit: an answer, not a failure.
    let blank = {
        let img = image::GrayImage::from_pixel(50, 50, image::Luma([255]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        png.into_inner()
    };
    let r = s.post("/api/predict", &blank);
    assert_eq!(r.status, 200);
    let r = r.json();
    assert!(r["digit"].is_null());
    assert!(r["message"].as_str().unwrap().contains("no digit"));
}

#[test]
fn bad_requests_get_json_errors_and_the_server_goes_on() {
    let dir = runs_folder();
    let before = snapshot(dir.path());
    let s = Served::start(dir.path(), &[]);
    assert!(s.post("/api/predict", b"").error(400).contains("no body"));
    assert!(
        s.post("/api/predict", b"GIF89a not really")
            .error(400)
            .contains("not an image")
    );
    assert!(
        s.post("/api/inside", &[0x89, b'P', b'N', b'G', 0, 1, 2])
            .error(400)
            .contains("not an image")
    );
    // A body past the limit, announced or not.
    let big = vec![0u8; scratchnet::serve::MAX_BODY + 1];
    assert!(s.post("/api/predict", &big).error(413).contains("larger than"));
    let announced = s.request(
        "POST",
        "/api/predict",
        &[("Content-Length", "999999999")],
        b"only a little",
    );
    announced.error(413);
    let chunked = {
        let mut body = Vec::new();
        for _ in 0..9 {
            body.extend_from_slice(format!("{:x}\r\n", 1 << 20).as_bytes());
            body.extend(std::iter::repeat_n(b'x', 1 << 20));
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        s.request(
            "POST",
            "/api/predict",
            &[("Transfer-Encoding", "chunked"), ("Content-Length", "0")],
            &body,
        )
    };
    assert!(
        chunked.status == 413 || chunked.status == 400,
        "{}",
        chunked.status
    );
    assert!(s.get("/api/nothing").error(404).contains("/api/nothing"));
    s.get("/index.php").error(404);
    assert!(s.get("/api/predict").error(405).contains("POST"));
    assert!(s.post("/api/runs", b"x").error(405).contains("GET"));
    assert!(s.get("/api/model?run=nobody").error(404).contains("nobody"));
    assert!(
        s.get("/api/confusion/cell?label=12&predicted=1")
            .error(400)
            .contains("label")
    );
    assert!(
        s.get("/api/confusion/cell?label=1")
            .error(400)
            .contains("predicted")
    );
    assert!(s.get("/api/confusion?limit=-3").error(400).contains("limit"));
    // Path traversal: only named runs and embedded assets are ever read.
    for path in [
        "/../secret.txt",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/api/runs/..%2F..%2Fetc/history",
        "/api/runs/../../etc/history",
        "/api/runs/sweep%2F..%2F..%2Fetc/history",
        "/api/model?run=..%2Fsweep%2Fmlp-32",
        "/api/model?run=/etc/passwd",
        "/api/weights?run=sweep/mlp-32/../../x",
        "/sweep/mlp-32/model.safetensors",
        "/api/runs/sweep%2Fmlp-32%00/history",
    ] {
        let r = s.get(path);
        assert!(r.status == 404 || r.status == 400, "{path}: {}", r.status);
        assert!(r.json()["error"].is_string(), "{path}");
    }
    // Not HTTP at all, then a request that is: still answered.
    {
        let mut t = TcpStream::connect(s.addr).unwrap();
        t.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = t.read(&mut [0u8; 64]);
    }
    assert_eq!(s.get("/api/runs").status, 200);
    drop(s);
    assert_eq!(
        snapshot(dir.path()),
        before,
        "the server wrote into what it serves"
    );
}

#[test]
fn serves_a_single_model_file_and_a_single_run_folder() {
    let dir = runs_folder();
    let file = dir.path().join("sweep/mlp-32/model.safetensors");
    let s = Served::start(&file, &[]);
    let runs = s.get("/api/runs").json();
    assert_eq!(runs["runs"][0]["id"], "model.safetensors");
    assert_eq!(runs["default"], "model.safetensors");
    assert_eq!(s.get("/api/model").json()["spec"]["hidden"], 32);
    assert_eq!(s.post("/api/predict", &drawn_one()).status, 200);
    let s = Served::start(&dir.path().join("sweep/cnn-4"), &[]);
    assert_eq!(s.get("/api/runs").json()["default"], ".");
    assert_eq!(
        s.get("/api/runs/./history").json()["epochs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s.get("/api/model").json()["spec"]["kind"], "cnn");
}

#[test]
fn a_port_in_use_is_a_clear_error_and_a_missing_path_too() {
    let dir = runs_folder();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = common::scratchnet(&["serve", dir.path().to_str().unwrap(), "--port", &port]);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains(&format!("--port {port}")) && err.contains("already in use"),
        "{err}"
    );
    let out = common::scratchnet(&["serve", dir.path().join("nothing-here").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("nothing-here"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn another_host_is_warned_about() {
    let dir = runs_folder();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .arg("serve")
        .arg(dir.path())
        .args(["--port", "0", "--host", "0.0.0.0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.contains("warning") && line.contains("other machines"),
        "{line}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_it_cleanly() {
    let dir = runs_folder();
    let mut s = Served::start(dir.path(), &[]);
    assert_eq!(s.get("/api/runs").status, 200);
    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

#[test]
#[cfg_attr(
    not(mnist_data),
    ignore = "needs MNIST: set SCRATCHNET_DATA_DIR, or run `scratchnet download`"
)]
fn the_confusion_matrix_and_its_cells_match_eval() {
    let Some(_) = common::mnist_dir("the_confusion_matrix_and_its_cells_match_eval") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("mlp");
    let out = common::scratchnet(&[
        "train",
        "mlp",
        "--hidden",
        "32",
        "--epochs",
        "1",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let eval = common::scratchnet(&["eval", run.to_str().unwrap()]);
    let accuracy = common::test_accuracy(&eval);
    let before = snapshot(dir.path());
    let s = Served::start(dir.path(), &[]);
    let c = s.get("/api/confusion?limit=5").json();
    assert_eq!(c["total"], 10_000);
    assert!((c["accuracy"].as_f64().unwrap() - accuracy).abs() < 1e-9);
    let counts: Vec<Vec<u64>> = c["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(counts.iter().flatten().sum::<u64>(), 10_000);
    let mistakes = c["mistakes"].as_array().unwrap();
    assert_eq!(mistakes.len(), 5);
    let conf = |m: &Value| {
        m["probabilities"][m["predicted"].as_u64().unwrap() as usize]
            .as_f64()
            .unwrap()
    };
    assert!(
        mistakes.windows(2).all(|w| conf(&w[0]) >= conf(&w[1])),
        "most confident first"
    );
    assert!(mistakes.iter().all(|m| m["label"] != m["predicted"]));
    // The largest off-diagonal cell: all its images, each of that cell.
    let (a, b) = (0..10)
        .flat_map(|i| (0..10).map(move |j| (i, j)))
        .filter(|(i, j)| i != j)
        .max_by_key(|&(i, j)| counts[i][j])
        .unwrap();
    let cell = s
        .get(&format!("/api/confusion/cell?label={a}&predicted={b}&limit=1000"))
        .json();
    assert_eq!(cell["total"], counts[a][b]);
    let images = cell["images"].as_array().unwrap();
    assert_eq!(images.len() as u64, counts[a][b]);
    for img in images {
        assert_eq!(
            (img["label"].as_u64(), img["predicted"].as_u64()),
            (Some(a as u64), Some(b as u64))
        );
        let px = base64::engine::general_purpose::STANDARD
            .decode(img["pixels"].as_str().unwrap())
            .unwrap();
        assert_eq!(px.len(), 784);
    }
    drop(s);
    assert_eq!(
        snapshot(dir.path()),
        before,
        "the server wrote into what it serves"
    );

    // The same pictures as files.
    let plots = tempfile::tempdir().unwrap();
    let out = common::scratchnet(&[
        "eval",
        run.to_str().unwrap(),
        "--plots",
        plots.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    for stem in ["confusion", "class-accuracy", "mistakes"] {
        let png = image::open(plots.path().join(format!("{stem}.png"))).unwrap();
        assert!(png.width() > 300 && png.height() > 200, "{stem}.png");
        let svg = std::fs::read_to_string(plots.path().join(format!("{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{stem}.svg");
        assert!(svg.len() < 2 << 20, "{stem}.svg is {} bytes", svg.len());
    }
}

#[test]
fn inspect_writes_the_weights_as_pictures_and_refuses_what_is_not_a_model() {
    let dir = runs_folder();
    let out_dir = tempfile::tempdir().unwrap();
    for (run, stems) in [
        ("sweep/mlp-32", ["hidden-units", "output-weights"]),
        ("sweep/cnn-4", ["filters", "class-weights"]),
    ] {
        let out = common::scratchnet(&[
            "inspect",
            dir.path().join(run).to_str().unwrap(),
            "--out",
            out_dir.path().join(run).to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        for stem in stems {
            let png = image::open(out_dir.path().join(run).join(format!("{stem}.png"))).unwrap();
            assert!(png.width() >= 400, "{run} {stem}.png");
            let svg = std::fs::read_to_string(out_dir.path().join(run).join(format!("{stem}.svg"))).unwrap();
            assert!(svg.contains("<image"), "{run} {stem}.svg embeds its bitmaps");
        }
    }
    let not_a_model = dir.path().join("sweep/results.csv");
    let out = common::scratchnet(&[
        "inspect",
        not_a_model.to_str().unwrap(),
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("results.csv"),
        "{}",
        common::stderr(&out)
    );
}
