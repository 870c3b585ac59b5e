#!/usr/bin/env bash
# Everything that needs a GPU, in one run that fits one 10-minute device command with room to
# spare (the step limits add up to 8 min 10 s): the device and versions, the first-use kernel
# compile (cold and cached), the `gpu` tests (kernels against the CPU with their mismatch counts,
# the torch and JAX bridges on CUDA, checkpoints through the staging buffer), compute-sanitizer's
# memcheck over a materialization of odd sizes, offsets and shards, and the GPU benchmarks (fills,
# then the torch bridge against torch's own recipes where torch sees the GPU).
# Run from the repository root, without installing:
#
#   OUT=/some/dir bash scripts/gpu_checks.sh
#
# Logs go to $OUT (default ./gpu-checks): device.txt, compile.log, gpu_tests.log, memcheck.log,
# bench_gpu.log, and summary.txt (each step's exit status and seconds, then the figures). A step
# that fails or runs out of time does not stop the others; the exit status is the first failure's.
set -u -o pipefail
OUT="${OUT:-gpu-checks}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# JAX must not take most of the GPU up front: its tests hand CuPy-filled arrays over by DLPack.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
PY="${PYTHON:-python3}"
status=0
: > "$OUT/summary.txt"

step() {  # step SECONDS LOG COMMAND...
    local limit=$1 log=$2 start rc
    shift 2
    start=$(date +%s)
    echo "== $* (limit ${limit}s)" | tee "$OUT/$log"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$OUT/$log"
    rc=$?
    echo "== exit $rc" | tee -a "$OUT/$log"
    printf '%-14s exit %3d  %4ds  %s\n' "$log" "$rc" "$(( $(date +%s) - start ))" "$*" >> "$OUT/summary.txt"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

step 15 device.txt bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv;
    nvidia-smi | head -4; '"$PY"' -c "import cupy, numpy, sys; print(\"python\", sys.version.split()[0], \"cupy\", cupy.__version__, \"numpy\", numpy.__version__, \"cuda runtime\", cupy.cuda.runtime.runtimeGetVersion())"'
step 45 compile.log "$PY" scripts/gpu_compile_time.py
step 140 gpu_tests.log "$PY" -m pytest -q -s -m gpu -p no:cacheprovider
if command -v compute-sanitizer >/dev/null 2>&1; then
    step 70 memcheck.log compute-sanitizer --tool memcheck --error-exitcode 1 "$PY" scripts/gpu_memcheck.py
else
    step 70 memcheck.log bash -c 'echo "compute-sanitizer not found: running the workload without it"; '"$PY"' scripts/gpu_memcheck.py'
fi
step 110 bench_gpu.log "$PY" scripts/bench_init.py --device cuda --repeat 3 ${GPU_CHECKS_QUICK:+--quick}
# The torch bridge (its `gpu` tests ran above, where torch sees the GPU): GPT-2 small and LLaMA-2-7B
# in float16 against torch's recipes, on torch's stream. Skipped where torch has no CUDA.
if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    step 70 bench_torch.log "$PY" scripts/bench_torch.py --device cuda --repeats 3 --models gpt2-small,small-10k
    step 40 bench_torch_7b.log "$PY" scripts/bench_torch.py --device cuda --repeats 1 --models llama2-7b --dtype float16
else
    echo "bench_torch: skipped, torch with CUDA is not installed here" | tee -a "$OUT/summary.txt"
fi

{
    echo
    echo "== figures"
    grep -h -E "differ|compile and load|ERROR SUMMARY|mismatches|passed|failed" "$OUT"/*.log 2>/dev/null
    sed -n '/^device:/,$p' "$OUT/bench_gpu.log" 2>/dev/null
    grep -h -E "gpuinit / reset" "$OUT"/bench_torch*.log 2>/dev/null
} >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
exit $status
