#!/usr/bin/env bash
# Everything that needs a GPU, in one run that fits a short device lease (about 8 minutes on an
# H100): the device, the `gpu` tests (with their printed mismatch rates), the whole suite, and the
# GPU benchmarks. Run from the repository root, without installing:
#
#   OUT=/some/dir bash scripts/gpu_checks.sh
#
# Logs go to $OUT (default: ./gpu-checks): device.txt, gpu_tests.log, all_tests.log, bench_gpu.log.
# Each step has its own time limit, so one hang does not cost the others; the exit status is the
# first failing step's.
set -u -o pipefail
OUT="${OUT:-gpu-checks}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
status=0

step() {  # step SECONDS LOG COMMAND...
    local limit=$1 log=$2
    shift 2
    echo "== $* (limit ${limit}s)" | tee "$OUT/$log"
    timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$log"
    local rc=$?
    echo "== exit $rc" | tee -a "$OUT/$log"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

step 30 device.txt bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv;
    '"$PY"' -c "import cupy, numpy; print(\"cupy\", cupy.__version__, \"numpy\", numpy.__version__)"'
step 240 gpu_tests.log "$PY" -m pytest -q -s -m gpu tests/test_gpu.py
step 180 all_tests.log "$PY" -m pytest -q
step 240 bench_gpu.log "$PY" scripts/bench_init.py --device cuda
exit $status
