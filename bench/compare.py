"""Reads the JSON lines of `scratchnet bench --json`, numpy_reference.py and
torch_reference.py from stdin and prints one Markdown table: seconds per epoch
(min / median), samples/s, achieved GFLOP/s, % of the matrix-multiply speed
measured in the same run, and scratchnet's time as a ratio of each reference's
(min over min; below 1 means scratchnet is faster). When a reference was run
several times (bench/run.sh with ROUNDS > 1), its fastest run is the one shown."""
import json, sys

rows = {}
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        by = rows.setdefault(r["model"], {})
        if r["reference"] not in by or r["min"] < by[r["reference"]]["min"]:
            by[r["reference"]] = r

refs = ["scratchnet", "numpy", "pytorch"]
print("| model | " + " | ".join(f"{r} s/epoch (min / median)" for r in refs)
      + " | scratchnet samples/s | scratchnet GFLOP/s | % of matmul speed | ratio to NumPy | ratio to PyTorch |")
print("|" + " --- |" * (len(refs) + 6))
for model, by in rows.items():
    ours = by.get("scratchnet")
    cells = [model]
    for r in refs:
        t = by.get(r)
        cells.append(f"{t['min']:.3f} / {t['median']:.3f}" if t else "—")
    if ours:
        gflops = ours["gflop_per_epoch"] / ours["min"]
        cells += [f"{60000 / ours['min']:.0f}", f"{gflops:.1f}", f"{100 * gflops / ours['matmul_gflops']:.0f} %"]
    else:
        cells += ["—"] * 3
    for r in ("numpy", "pytorch"):
        cells.append(f"{ours['min'] / by[r]['min']:.2f}×" if ours and r in by else "—")
    print("| " + " | ".join(cells) + " |")
first = next((by["scratchnet"] for by in rows.values() if "scratchnet" in by), None)
if first:
    print(f"\nmatrix-multiply speed measured by scratchnet in this run: {first['matmul_gflops']:.1f} GFLOP/s"
          f" on {first['threads']} threads; peak resident memory of the scratchnet bench: {first['peak_rss_mb']:.0f} MB")
