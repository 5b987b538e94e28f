#!/bin/sh
# The GPU check in one command, for the device machine (see benchmarks/gpu_check.py):
#     sh benchmarks/gpu_check.sh [--budget-scale F] [--data DIR] [--only PARTS]
# runs rnnlab from this source tree and writes the summary and logs under $OUT
# (default gpu_check_out). Ends within 8 minutes on an H100; exit 1 when a part failed.
set -u
cd "$(dirname "$0")/.." || exit 2
OUT="${OUT:-gpu_check_out}"
PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" exec python benchmarks/gpu_check.py --out "$OUT" "$@"
