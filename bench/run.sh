#!/usr/bin/env bash
# scratchnet against the report-style NumPy reference and PyTorch, back to back
# on this machine, printed as one table (bench/compare.py).
# Not part of CI (it needs PyTorch, several GB). Usage: bench/run.sh [--avx2] [THREADS] [EPOCHS] [ROUNDS]
# --avx2 holds every program to AVX2 (for the machines without AVX-512): scratchnet at
# SCRATCHNET_KERNELS=avx2, OpenBLAS at OPENBLAS_CORETYPE=Haswell, PyTorch at
# ATEN_CPU_CAPABILITY=avx2 with MKL and oneDNN limited to AVX2.
# With ROUNDS > 1 the three run in turn ROUNDS times and each one's fastest round is
# shown: on a shared machine, speed drifts by tens of percent over minutes, and taking
# each program's best round compares them at their best rather than at whichever
# moment each happened to run.
# Needs MNIST in $SCRATCHNET_DATA_DIR/mnist (default ../shared/data). The first run
# creates bench/.venv with NumPy and PyTorch from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
avx2=0
if [ "${1:-}" = "--avx2" ]; then
  avx2=1
  shift
fi
threads="${1:-$(nproc)}"
epochs="${2:-3}"
rounds="${3:-1}"
export SCRATCHNET_DATA_DIR="${SCRATCHNET_DATA_DIR:-$(cd .. && pwd)/shared/data}"
py=bench/.venv/bin/python
if [ ! -x "$py" ]; then
  python3 -m venv bench/.venv
fi
if ! "$py" -c "import numpy, torch" 2>/dev/null; then
  bench/.venv/bin/pip install -q -r bench/requirements.txt -r bench/requirements-torch.txt
fi
cargo build --release -q
# What each program is held to: nothing (each uses the best its libraries find), or AVX2.
if [ "$avx2" = 1 ]; then
  scratchnet_env=(SCRATCHNET_KERNELS=avx2)
  numpy_env=(OPENBLAS_CORETYPE=Haswell)
  torch_env=(ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2)
  echo "== every program held to AVX2" >&2
else
  scratchnet_env=()
  numpy_env=()
  torch_env=()
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for round in $(seq "$rounds"); do
  echo "== round $round of $rounds: scratchnet ($threads threads)" >&2
  # The same images as the references: all 60,000 MNIST training images, scaled to [0, 1].
  env "${scratchnet_env[@]}" target/release/scratchnet bench --json --threads "$threads" --hidden 256 --cnn 7x1,7x32 \
    --repeats "$epochs" --data mnist --samples 60000 | tee -a "$out" >&2
  # The machine may pin OpenBLAS to an old core type for safety; unset it here only, for a fair timing.
  echo "== NumPy reference ($threads BLAS threads, $epochs epochs of the 60,000 MNIST images)" >&2
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${numpy_env[@]}" OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" \
    "$py" bench/numpy_reference.py --epochs "$epochs" | tee -a "$out" >&2
  echo "== PyTorch reference ($threads threads, $epochs epochs)" >&2
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${torch_env[@]}" OMP_NUM_THREADS="$threads" \
    "$py" bench/torch_reference.py --epochs "$epochs" --threads "$threads" | tee -a "$out" >&2
done
echo
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $threads threads$([ "$avx2" = 1 ] && echo '; every program held to AVX2')"
"$py" bench/compare.py < "$out"
