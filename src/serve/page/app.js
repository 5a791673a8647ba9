// scratchnet serve: the page. Plain JavaScript, no libraries; every figure
// is drawn from the JSON API (documented in the README).

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
};

const state = {
  run: null, // the model shown (a run's name)
  model: null, // GET /api/model
  weights: null, // GET /api/weights
  drawing: null, // the current image (Blob), or null
  inside: null, // POST /api/inside for the drawing
  confusion: null,
  view: "draw",
  runs: [],
  histories: new Map(), // run -> {modified, epochs}
  showAllTiles: false,
};

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${path}: ${response.status}`);
  return body;
}
const withRun = (path) => (state.run === null ? path : `${path}${path.includes("?") ? "&" : "?"}run=${encodeURIComponent(state.run)}`);

// ---------- decoding what the API sends ----------

function bytes64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// A tensor8 ({rows, cols, scale, data}) as rows of floats.
function rowsOf(t) {
  const raw = new Int8Array(bytes64(t.data).buffer);
  const rows = [];
  for (let r = 0; r < t.rows; r++) {
    const s = t.scale[r] / 127;
    const row = new Float32Array(t.cols);
    for (let c = 0; c < t.cols; c++) row[c] = raw[r * t.cols + c] * s;
    rows.push(row);
  }
  return rows;
}

// ---------- painting small images ----------

// Grey pixels 0-255 (or floats 0..max) into a w×h canvas.
function greyCanvas(values, w, h, max = 255, canvas = null) {
  const c = canvas || el("canvas", { class: "pixelated" });
  c.width = w;
  c.height = h;
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(w, h);
  const k = max > 0 ? 255 / max : 0;
  for (let i = 0; i < w * h; i++) {
    const v = Math.max(0, Math.min(255, Math.round(values[i] * k)));
    img.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

// Signed values: blue (negative), white (zero), red (positive), scaled by max |v|.
function divergingColour(t) {
  const a = Math.min(1, Math.abs(t));
  return t >= 0
    ? [255 - a * (255 - 178), 255 - a * (255 - 24), 255 - a * (255 - 43)]
    : [255 - a * (255 - 33), 255 - a * (255 - 102), 255 - a * (255 - 172)];
}
function signedCanvas(values, w, h, offset = 0, canvas = null) {
  const c = canvas || el("canvas", { class: "pixelated" });
  c.width = w;
  c.height = h;
  let m = 0;
  for (let i = 0; i < w * h; i++) m = Math.max(m, Math.abs(values[offset + i]));
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const [r, g, b] = divergingColour(m > 0 ? values[offset + i] / m : 0);
    img.data.set([r, g, b, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

// ---------- tabs and the model ----------

function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.classList.toggle("active", s.id === `view-${view}`);
  if (view === "inside") renderInside();
  if (view === "mistakes") loadConfusion();
  if (view === "training") pollRuns();
}

async function chooseModel(run) {
  state.run = run;
  state.model = state.weights = state.inside = state.confusion = null;
  state.model = await api(withRun("/api/model"));
  const m = state.model;
  const acc = m.metrics && typeof m.metrics.test_accuracy === "number" ? `, test accuracy ${(100 * m.metrics.test_accuracy).toFixed(2)} %` : "";
  $("#model-info").textContent = `${m.description}, ${m.parameters.toLocaleString("en")} parameters, ${m.dataset_name}${acc}`;
  buildBars();
  if (state.drawing) await predict();
  if (state.view === "inside") renderInside();
  if (state.view === "mistakes") loadConfusion();
}

async function loadModels() {
  const r = await api("/api/runs");
  state.runs = r.runs;
  const select = $("#model");
  select.replaceChildren();
  for (const run of r.runs.filter((x) => x.has_model)) {
    const acc = run.test_accuracy == null ? "" : ` (${(100 * run.test_accuracy).toFixed(2)} %)`;
    select.append(el("option", { value: run.id, text: `${run.id}${acc}` }));
  }
  if (r.default !== null) {
    select.value = r.default;
    await chooseModel(r.default);
  } else {
    $("#model-info").textContent = "no model yet: the runs here have no model.safetensors";
  }
}

// ---------- Draw ----------

const pad = $("#pad");
const ctx = pad.getContext("2d");
let drawing = false;
let dirty = false;
let last = null;
let pending = null;
// Strokes finished, and the stroke whose drawing the shown answer is for
// (body[data-strokes], body[data-answered]: what the browser tests wait on).
let strokes = 0;
// Each request's number; an answer is shown only if it is the latest.
let sequence = 0;

function clearPad() {
  // Answers still on their way are for the old drawing: drop them.
  sequence += 1;
  clearTimeout(pending);
  pending = null;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
  state.drawing = null;
  state.inside = null;
  $("#prediction").textContent = "–";
  $("#confidence").textContent = "";
  $("#answer-note").textContent = "";
  greyCanvas(new Uint8Array(784), 28, 28, 255, $("#prepared"));
  updateBars(null);
  if (state.view === "inside") renderInside();
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
}
function stroke(from, to) {
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 22;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...from);
  ctx.lineTo(...to);
  ctx.stroke();
}
pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  last = point(e);
  stroke(last, last);
  dirty = true;
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const p = point(e);
  stroke(last, p);
  last = p;
  if (!pending) pending = setTimeout(() => { pending = null; sendPad(); }, 250);
});
const endStroke = () => {
  if (!drawing) return;
  drawing = false;
  // The stroke's own request supersedes a throttled one still waiting.
  clearTimeout(pending);
  pending = null;
  strokes += 1;
  document.body.dataset.strokes = strokes;
  sendPad();
};
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
$("#clear").addEventListener("click", clearPad);

function sendPad() {
  if (!dirty) return;
  const stroke = strokes;
  pad.toBlob((blob) => {
    state.drawing = blob;
    predict(stroke);
  }, "image/png");
}

function useFile(file) {
  if (!file) return;
  state.drawing = file;
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    const s = Math.min(pad.width / img.width, pad.height / img.height);
    ctx.drawImage(img, (pad.width - img.width * s) / 2, (pad.height - img.height * s) / 2, img.width * s, img.height * s);
    URL.revokeObjectURL(url);
  };
  img.src = url;
  dirty = false;
  predict();
}
$("#file").addEventListener("change", (e) => useFile(e.target.files[0]));
pad.addEventListener("dragover", (e) => { e.preventDefault(); pad.classList.add("dropping"); });
pad.addEventListener("dragleave", () => pad.classList.remove("dropping"));
pad.addEventListener("drop", (e) => {
  e.preventDefault();
  pad.classList.remove("dropping");
  useFile(e.dataTransfer.files[0]);
});

function buildBars() {
  const bars = $("#bars");
  bars.replaceChildren();
  const names = state.model ? state.model.classes : [...Array(10).keys()].map(String);
  names.forEach((name, k) => {
    bars.append(el("div", { class: "bar", "data-class": k },
      el("span", { text: name }),
      el("span", { class: "track" }, el("span", { class: "fill" })),
      el("span", { class: "value", text: "" })));
  });
}
function updateBars(probabilities) {
  const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
  document.querySelectorAll("#bars .bar").forEach((bar, k) => {
    const p = probabilities ? probabilities[k] : 0;
    bar.classList.toggle("top", k === top);
    bar.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    bar.querySelector(".value").textContent = probabilities ? p.toFixed(3) : "";
  });
}

async function predict(stroke = strokes) {
  if (!state.drawing || !state.model) return;
  const mine = ++sequence;
  const blob = state.drawing;
  const r = await api(withRun("/api/predict"), { method: "POST", body: blob, headers: { "Content-Type": blob.type || "image/png" } });
  if (mine !== sequence) return;
  if (r.digit === null) {
    $("#prediction").textContent = "?";
    $("#confidence").textContent = "";
    $("#answer-note").textContent = r.message;
    updateBars(null);
    document.body.dataset.answered = stroke;
    return;
  }
  greyCanvas(r.prepared, 28, 28, 255, $("#prepared"));
  updateBars(r.probabilities);
  const p = r.probabilities[r.digit];
  $("#prediction").textContent = r.class_name;
  $("#confidence").textContent = `${(100 * p).toFixed(1)} %`;
  const notes = [];
  if (p < 0.5) notes.push("unsure: no class reaches 50 %");
  if (r.inverted) notes.push("inverted (dark ink on light paper)");
  if (r.thickened) notes.push("thin strokes widened");
  $("#answer-note").textContent = notes.join("; ");
  state.inside = null;
  document.body.dataset.answered = stroke;
  if (state.view === "inside") renderInside();
}

// ---------- Inside ----------

async function renderInside() {
  if (!state.model) return;
  if (!state.weights) state.weights = await api(withRun("/api/weights"));
  if (state.drawing && !state.inside) {
    const blob = state.drawing;
    const r = await api(withRun("/api/inside"), { method: "POST", body: blob });
    if (blob !== state.drawing) return;
    state.inside = r.digit === null ? null : r;
  }
  $("#inside-hint").hidden = !!state.inside;
  const w = state.weights;
  $("#inside-mlp").hidden = w.kind !== "mlp";
  $("#inside-cnn").hidden = w.kind !== "cnn";
  if (w.kind === "mlp") renderMlp(w, state.inside);
  else renderCnn(w, state.inside);
}

function renderMlp(w, inside) {
  const units = w._rows || (w._rows = rowsOf(w.input_weights));
  const out = w._out || (w._out = rowsOf(w.output_weights));
  const order = inside ? inside.order : [...units.keys()];
  const shown = state.showAllTiles ? order : order.slice(0, 100);
  const tiles = $("#tiles");
  tiles.replaceChildren();
  for (const j of shown) {
    const caption = inside ? inside.hidden[j].toFixed(2) : `unit ${j}`;
    tiles.append(el("div", { class: "tile", "data-unit": j }, signedCanvas(units[j], 28, 28), el("span", { text: caption })));
  }
  $("#tiles-count").textContent = `Showing ${shown.length} of ${units.length} units.`;
  const more = $("#more-tiles");
  more.hidden = shown.length === units.length;
  more.onclick = () => { state.showAllTiles = true; renderMlp(w, inside); };
  // Output weights: 10 rows × H units, columns in the order above.
  const h = order.length;
  const values = new Float32Array(10 * h);
  out.forEach((row, c) => order.forEach((j, i) => { values[c * h + i] = row[j]; }));
  signedCanvas(values, h, 10, 0, $("#output-weights"));
}

function renderCnn(w, inside) {
  const filters = w._f || (w._f = rowsOf(w.conv_weights));
  const cls = w._c || (w._c = rowsOf(w.output_weights));
  const k = w.kernel;
  const maps = inside ? rowsOf(inside.maps) : null;
  const pooled = inside && inside.pooled ? rowsOf(inside.pooled.maps) : null;
  const order = [...filters.keys()];
  if (inside) order.sort((a, b) => inside.strength[b] - inside.strength[a] || a - b);
  const box = $("#filters");
  box.replaceChildren();
  for (const f of order) {
    const parts = [el("div", { class: "tile" }, signedCanvas(filters[f], k, k), el("span", { text: `filter ${f}` }))];
    if (maps) {
      const max = Math.max(1e-9, ...maps[f]);
      parts.push(el("div", { class: "tile" }, greyCanvas(maps[f], inside.side, inside.side, max), el("span", { text: "after ReLU" })));
      if (pooled) {
        const pm = Math.max(1e-9, ...pooled[f]);
        parts.push(el("div", { class: "tile" }, greyCanvas(pooled[f], inside.pooled.side, inside.pooled.side, pm), el("span", { text: "pooled" })));
      }
    }
    box.append(el("div", { class: "card", "data-filter": f }, ...parts));
  }
  // Output weights per class: the F maps of side×side tiled in a grid.
  const side = w.feature_side;
  const cols = Math.ceil(Math.sqrt(w.filters));
  const rows = Math.ceil(w.filters / cols);
  const W = cols * (side + 1) - 1;
  const H = rows * (side + 1) - 1;
  const classes = $("#class-maps");
  classes.replaceChildren();
  cls.forEach((row, c) => {
    const grid = new Float32Array(W * H);
    for (let f = 0; f < w.filters; f++) {
      const ox = (f % cols) * (side + 1);
      const oy = Math.floor(f / cols) * (side + 1);
      for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) grid[(oy + y) * W + ox + x] = row[f * side * side + y * side + x];
    }
    const canvas = signedCanvas(grid, W, H);
    const scale = Math.max(1, Math.floor(200 / W));
    canvas.style.width = `${W * scale}px`;
    canvas.style.height = `${H * scale}px`;
    classes.append(el("div", { class: "tile class-map", "data-class": c }, canvas, el("span", { text: state.model.classes[c] })));
  });
}

// ---------- Mistakes ----------

function thumb(img) {
  const c = greyCanvas(bytes64(img.pixels), 28, 28);
  const probs = el("div", { class: "probs" });
  img.probabilities.forEach((p, k) => {
    probs.append(el("span", { class: k === img.label ? "true" : "", style: `height:${Math.max(1, 14 * p)}px`, title: `${k}: ${p}` }));
  });
  const names = state.model.classes;
  const p = img.probabilities[img.predicted];
  return el("div", { class: "thumb", "data-index": img.index }, c,
    el("span", { text: `${names[img.label]} → ${names[img.predicted]} (${p.toFixed(2)})` }), probs);
}

async function loadConfusion() {
  if (!state.model) return;
  if (state.confusion && state.confusion.run === state.run) return;
  $("#mistakes-status").textContent = "Evaluating the test set…";
  const r = await api(withRun("/api/confusion?limit=40"));
  state.confusion = r;
  $("#mistakes-status").textContent =
    `${r.run}: ${r.correct.toLocaleString("en")} of ${r.total.toLocaleString("en")} test images right (${(100 * r.accuracy).toFixed(2)} %), mean loss ${r.loss.toFixed(4)}; ${r.mistakes_total} mistakes.`;
  const names = state.model.classes;
  const table = $("#confusion");
  table.replaceChildren();
  const head = el("tr", {}, el("th", { text: "" }));
  names.forEach((_, k) => head.append(el("th", { text: String(k), title: names[k] })));
  head.append(el("th", { class: "acc", text: "accuracy" }));
  table.append(head);
  let maxOff = 1;
  r.counts.forEach((row, i) => row.forEach((n, j) => { if (i !== j) maxOff = Math.max(maxOff, n); }));
  r.counts.forEach((row, i) => {
    const tr = el("tr", {}, el("th", { text: String(i), title: names[i] }));
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((n, j) => {
      const td = el("td", { class: "cell", "data-label": i, "data-predicted": j, text: String(n), title: `${names[i]} predicted ${names[j]}: ${n}` });
      if (i === j) {
        const a = total ? n / total : 0;
        td.style.background = `rgba(22,163,74,${0.25 + 0.6 * a})`;
      } else if (n > 0) {
        const a = Math.log1p(n) / Math.log1p(maxOff);
        td.style.background = `rgba(220,38,38,${0.08 + 0.72 * a})`;
      }
      td.addEventListener("click", () => showCell(i, j, td));
      tr.append(td);
    });
    const acc = r.per_class_accuracy[i];
    tr.append(el("td", { class: "acc", text: acc == null ? "–" : `${(100 * acc).toFixed(1)} %` }));
    table.append(tr);
  });
  const gallery = $("#mistakes");
  gallery.replaceChildren(...r.mistakes.map(thumb));
}

async function showCell(label, predicted, td) {
  document.querySelectorAll("#confusion td.selected").forEach((c) => c.classList.remove("selected"));
  td.classList.add("selected");
  const names = state.model.classes;
  const r = await api(withRun(`/api/confusion/cell?label=${label}&predicted=${predicted}&limit=80`));
  const shown = r.images.length < r.total ? `, the ${r.images.length} most confident shown` : "";
  $("#cell-title").textContent = `True ${names[label]}, predicted ${names[predicted]}: ${r.total} images${shown}`;
  $("#cell-gallery").replaceChildren(...r.images.map(thumb));
}

// ---------- Training ----------

const COLOURS = { train: "#2563eb", test: "#dc2626", validation: "#16a34a" };

function chart(title, series, { percent = false } = {}) {
  const W = 400, H = 190, L = 46, R = 10, T = 22, B = 28;
  const pts = series.flatMap((s) => s.points);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  add("text", { x: L, y: 14, "font-size": 12, "font-weight": 600 }, title);
  if (!pts.length) {
    add("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "font-size": 12, fill: "#6b7280" }, "no epoch finished yet");
    return svg;
  }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs, 1), x1 = Math.max(...xs, 2);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 0.01; y1 += 0.01; }
  const pad = (y1 - y0) * 0.06;
  // Padding never takes a loss below 0 or an accuracy above 100 %.
  y0 = Math.min(...ys) >= 0 ? Math.max(0, y0 - pad) : y0 - pad;
  y1 = percent && Math.max(...ys) <= 1 ? Math.min(1, y1 + pad) : y1 + pad;
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  add("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#e5e7eb" });
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    add("line", { x1: L, x2: W - R, y1: Y(y), y2: Y(y), stroke: "#f3f4f6" });
    add("text", { x: L - 4, y: Y(y) + 4, "text-anchor": "end", "font-size": 10, fill: "#6b7280" }, percent ? `${(100 * y).toFixed(1)}` : y.toPrecision(3));
  }
  add("text", { x: W - R, y: H - 6, "text-anchor": "end", "font-size": 10, fill: "#6b7280" }, `epoch ${x1}`);
  add("text", { x: L, y: H - 6, "font-size": 10, fill: "#6b7280" }, `${x0}`);
  let lx = W - R;
  for (const s of [...series].reverse()) {
    if (!s.points.length) continue;
    add("polyline", { points: s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" "), fill: "none", stroke: s.colour, "stroke-width": 1.8, "data-series": s.name });
    for (const [x, y] of s.points.length < 40 ? s.points : []) add("circle", { cx: X(x), cy: Y(y), r: 2, fill: s.colour });
    const label = add("text", { x: lx, y: 14, "text-anchor": "end", "font-size": 11, fill: s.colour }, s.name);
    lx -= 8 + 6.5 * s.name.length;
    void label;
  }
  return svg;
}

function runCard(run, history) {
  const epochs = history ? history.epochs : [];
  const card = el("div", { class: "run-card", "data-run": run.id, "data-epochs": epochs.length });
  card.append(el("h4", { text: run.id === "." ? "this run" : run.id }));
  const done = run.epochs ? `${epochs.length} of ${run.epochs} epochs` : `${epochs.length} epochs`;
  const best = epochs.length ? `; test accuracy ${(100 * epochs[epochs.length - 1].test_accuracy).toFixed(2)} %` : "";
  card.append(el("div", { class: `status${run.training ? " live" : ""}`, text: `${run.description || ""} · ${done}${best}${run.training ? " · training now" : ""}` }));
  const series = (f) => epochs.filter((r) => r[f] !== null && r[f] !== undefined && Number.isFinite(r[f])).map((r) => [r.epoch, r[f]]);
  const charts = el("div", { class: "charts" });
  card.append(charts);
  charts.append(chart("loss", [
    { name: "train", colour: COLOURS.train, points: series("train_loss") },
    { name: "test", colour: COLOURS.test, points: series("test_loss") },
  ]));
  charts.append(chart("accuracy (%)", [
    { name: "train", colour: COLOURS.train, points: series("train_accuracy") },
    { name: "test", colour: COLOURS.test, points: series("test_accuracy") },
    { name: "validation", colour: COLOURS.validation, points: series("validation_accuracy") },
  ], { percent: true }));
  return card;
}

function renderTables(tables) {
  const box = $("#tables");
  box.replaceChildren();
  for (const t of tables) {
    box.append(el("h3", { text: `Results${t.folder === "." ? "" : ` of ${t.folder}`} (results.csv)` }));
    const table = el("table", { class: "results" });
    table.append(el("tr", {}, ...t.header.map((h) => el("th", { text: h.replaceAll("_", " ") }))));
    for (const row of t.rows) {
      table.append(el("tr", {}, ...row.map((v) => {
        const x = Number(v);
        return el("td", { text: v !== "" && Number.isFinite(x) && !Number.isInteger(x) ? x.toFixed(4) : v });
      })));
    }
    box.append(table);
  }
}

let polling = false;
async function pollRuns() {
  if (polling) return;
  polling = true;
  try {
    const r = await api("/api/runs");
    state.runs = r.runs;
    renderTables(r.tables);
    const shown = r.runs.filter((x) => x.has_history || x.training).slice(0, 60);
    const live = shown.filter((x) => x.training).length;
    $("#training-status").textContent = `${r.runs.length} run${r.runs.length === 1 ? "" : "s"} in ${r.root}${live ? `; ${live} training now, updated every 2 s` : ""}.`;
    const box = $("#runs");
    for (const run of shown) {
      let h = state.histories.get(run.id);
      if (!h || h.modified !== run.modified_ms) {
        const fetched = await api(`/api/runs/${encodeURIComponent(run.id)}/history`);
        h = { modified: run.modified_ms, epochs: fetched.epochs };
        state.histories.set(run.id, h);
      }
      const card = runCard(run, h);
      const old = [...box.children].find((c) => c.dataset.run === run.id);
      if (old) old.replaceWith(card);
      else box.append(card);
    }
    for (const c of [...box.children]) if (!shown.some((x) => x.id === c.dataset.run)) c.remove();
    // A new model (a run that just finished) joins the model list.
    const have = new Set([...$("#model").options].map((o) => o.value));
    for (const run of r.runs.filter((x) => x.has_model && !have.has(x.id))) $("#model").append(el("option", { value: run.id, text: run.id }));
  } finally {
    polling = false;
  }
}

// ---------- start ----------

for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
$("#model").addEventListener("change", (e) => chooseModel(e.target.value));
setInterval(() => { if (state.view === "training") pollRuns(); }, 2000);
clearPad();
buildBars();
loadModels().then(() => document.body.setAttribute("data-ready", "1"));
