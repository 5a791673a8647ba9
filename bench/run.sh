#!/usr/bin/env bash
# scratchnet against the report-style NumPy reference, back to back on this machine.
# Not part of CI. Usage: bench/run.sh [THREADS]   (needs MNIST in $SCRATCHNET_DATA_DIR/mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-$(nproc)}"
export SCRATCHNET_DATA_DIR="${SCRATCHNET_DATA_DIR:-$(cd .. && pwd)/shared/data}"
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q -r bench/requirements.txt
fi
cargo build --release -q
echo "== scratchnet bench ($threads threads)"
target/release/scratchnet bench --threads "$threads" --cnn 7x1,7x32 --repeats 3
echo "== NumPy reference ($threads BLAS threads; seconds per epoch on the 60,000 MNIST images)"
# The machine may pin OpenBLAS to an old core type for safety; unset it here only, for a fair timing.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" \
  bench/.venv/bin/python bench/numpy_reference.py --epochs 3
