// End-to-end test of `scratchnet serve` in headless Chromium, driven by
// playwright-core. Run by tests/browser.rs, which trains the models, starts
// the server and passes:
//   argv[2]            the page's URL
//   SCRATCHNET_BIN     the scratchnet binary (for the live training)
//   LIVE_RUN_DIR       where to train a run while the Training view watches
//   MODELS             comma-separated runs to draw for (e.g. "mlp,cnn")
//   EXPECT_CORRECT     how many of the four drawn digits each model must get right
//   SCREENSHOTS        optional folder for a screenshot of each view
//   CHROMIUM           the browser (default /usr/bin/chromium)
// Prints one JSON line per drawn digit; exits non-zero on any failure or
// any console error on the page.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { join } from "node:path";

const url = process.argv[2];
const models = (process.env.MODELS || "").split(",").filter(Boolean);
const expectCorrect = Number(process.env.EXPECT_CORRECT || "4");
const shots = process.env.SCREENSHOTS || "";
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
};

// Strokes of each digit on the 280×280 pad, in pad coordinates.
const ellipse = (cx, cy, rx, ry, n = 48) =>
  [...Array(n + 1).keys()].map((i) => [cx + rx * Math.sin((2 * Math.PI * i) / n), cy - ry * Math.cos((2 * Math.PI * i) / n)]);
const DIGITS = {
  1: [[[118, 80], [146, 50], [146, 232]]],
  4: [[[160, 48], [78, 168], [212, 168]], [[168, 96], [168, 236]]],
  7: [[[72, 62], [206, 62], [128, 236]]],
  0: [ellipse(140, 142, 58, 88)],
};

// playwright starts Chromium on a fresh, empty profile of its own (a new
// --user-data-dir in a temporary folder, removed on close).
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
  ],
});
let live = null;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector("body[data-ready='1']", { timeout: 20000 });

  async function draw(strokes) {
    const box = await page.locator("#pad").boundingBox();
    const at = ([x, y]) => [box.x + (x * box.width) / 280, box.y + (y * box.height) / 280];
    const before = Number((await page.getAttribute("body", "data-strokes")) || "0");
    for (const s of strokes) {
      await page.mouse.move(...at(s[0]));
      await page.mouse.down();
      for (const p of s.slice(1)) await page.mouse.move(...at(p), { steps: 8 });
      await page.mouse.up();
    }
    const want = String(before + strokes.length);
    await page.waitForFunction((w) => document.body.dataset.answered === w, want, { timeout: 20000 });
    return (await page.textContent("#prediction")).trim();
  }

  // Draw: each model classifies a drawn 1, 4, 7 and 0.
  for (const model of models) {
    await page.selectOption("#model", model);
    await page.waitForFunction((m) => document.querySelector("#model-info").textContent.length > 0 && document.querySelector("#model").value === m, model);
    let right = 0;
    for (const [digit, strokes] of Object.entries(DIGITS)) {
      await page.click("#clear");
      check((await page.textContent("#prediction")).trim() === "–", `${model}: #clear empties the answer`);
      const got = await draw(strokes);
      const bars = await page.$$eval("#bars .bar .value", (v) => v.map((e) => Number(e.textContent)));
      const sum = bars.reduce((a, b) => a + b, 0);
      console.log(JSON.stringify({ model, drawn: Number(digit), predicted: got, probabilities: bars }));
      check(Math.abs(sum - 1) < 0.02, `${model}: the ten bars sum to 1 (${sum.toFixed(3)})`);
      if (got === digit) right += 1;
      if (shots && model === models[models.length - 1] && digit === "7") {
        await page.screenshot({ path: join(shots, "serve-draw.png") });
      }
    }
    check(right >= expectCorrect, `${model}: ${right} of 4 drawn digits classified right (need ${expectCorrect})`);
  }
  const prepared = await page.evaluate(() => {
    const c = document.querySelector("#prepared");
    const d = c.getContext("2d").getImageData(0, 0, 28, 28).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 128) lit += 1;
    return lit;
  });
  check(prepared > 20 && prepared < 400, `the prepared 28×28 image shows the last drawn digit (${prepared} bright pixels)`);

  // Inside: the last model's units or filters, with the drawing's activations.
  await page.click("#tab-inside");
  await page.waitForFunction(() => document.querySelector("#inside-hint").hidden, null, { timeout: 20000 });
  const inside = await page.evaluate(() => ({
    tiles: document.querySelectorAll("#tiles .tile").length,
    filters: document.querySelectorAll("#filters .card").length,
    maps: document.querySelectorAll("#filters .card .tile").length,
    classes: document.querySelectorAll("#class-maps .tile").length,
  }));
  check(inside.tiles > 0 || (inside.filters > 0 && inside.maps >= 2 * inside.filters && inside.classes === 10),
    `Inside shows the units or filters with their maps (${JSON.stringify(inside)})`);
  if (shots) await page.screenshot({ path: join(shots, "serve-inside.png"), fullPage: true });

  // Mistakes: the confusion matrix; clicking the largest off-diagonal cell shows its images.
  await page.click("#tab-mistakes");
  await page.waitForFunction(() => document.querySelectorAll("#confusion td.cell").length === 100, null, { timeout: 60000 });
  const cell = await page.evaluate(() => {
    let best = null;
    for (const td of document.querySelectorAll("#confusion td.cell")) {
      const n = Number(td.textContent);
      if (td.dataset.label !== td.dataset.predicted && (!best || n > best.n)) best = { n, label: td.dataset.label, predicted: td.dataset.predicted };
    }
    return best;
  });
  await page.click(`#confusion td.cell[data-label='${cell.label}'][data-predicted='${cell.predicted}']`);
  await page.waitForFunction((n) => document.querySelectorAll("#cell-gallery .thumb").length === n, Math.min(cell.n, 80), { timeout: 20000 });
  const title = await page.textContent("#cell-title");
  check(title.includes(`${cell.n} images`), `clicking cell ${cell.label}→${cell.predicted} shows its ${cell.n} images ("${title}")`);
  check((await page.$$("#mistakes .thumb")).length > 0, "the most confident mistakes are shown");
  if (shots) await page.screenshot({ path: join(shots, "serve-mistakes.png"), fullPage: true });

  // Training: a run trained now, in the served folder, grows on the page.
  await page.click("#tab-training");
  live = spawn(process.env.SCRATCHNET_BIN, ["train", "cnn", "--filters", "8", "--epochs", "6", "--out", process.env.LIVE_RUN_DIR], { stdio: "ignore" });
  const epochs = () => page.evaluate(() => Number(document.querySelector(".run-card[data-run='live']")?.dataset.epochs || "-1"));
  await page.waitForFunction(() => Number(document.querySelector(".run-card[data-run='live']")?.dataset.epochs || "0") >= 1, null, { timeout: 60000 });
  const first = await epochs();
  await page.waitForFunction((f) => Number(document.querySelector(".run-card[data-run='live']")?.dataset.epochs || "0") > f, first, { timeout: 60000 });
  // The card's epoch count and its test curve's points, read together (the card is redrawn as epochs finish).
  const grown = await page.evaluate(() => {
    const card = document.querySelector(".run-card[data-run='live']");
    const line = card.querySelector("polyline[data-series='test']");
    return { epochs: Number(card.dataset.epochs), points: line ? line.getAttribute("points").split(" ").length : 0 };
  });
  check(grown.epochs > first, `the live run's curves grew from ${first} to ${grown.epochs} epochs while it trained`);
  check(grown.points === grown.epochs, `its test-accuracy curve has one point per epoch (${grown.points})`);
  if (shots) await page.screenshot({ path: join(shots, "serve-training.png"), fullPage: true });

  check(consoleErrors.length === 0, `no console errors (${JSON.stringify(consoleErrors)})`);
} catch (e) {
  failures.push(String(e));
  console.log(`FAIL ${e.stack || e}`);
} finally {
  if (live) await new Promise((done) => { if (live.exitCode !== null) done(); else live.on("exit", done); });
  await browser.close();
}
if (failures.length) {
  console.log(`${failures.length} failure(s)`);
  process.exit(1);
}
console.log("all browser checks passed");
