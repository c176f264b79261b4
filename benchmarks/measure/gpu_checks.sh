#!/usr/bin/env bash
# The GPU checks of the README (docs), in one go: CUDA tests, speed benchmark on CUDA, the quick suite on
# CUDA, MiniLM's frozen-prefix timing. Run from the repository root on a machine with a CUDA GPU:
#   bash benchmarks/measure/gpu_checks.sh [OUT_DIR]        (default OUT_DIR: results/gpu_checks)
# PYTHON (default .venv/bin/python, else python3) selects the interpreter.
set -u
OUT=${1:-results/gpu_checks}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
mkdir -p "$OUT"
T0=$(date +%s); step() { echo "=== [$(( $(date +%s) - T0 )) s] $*"; }
step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || exit 2
"$PY" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA GPU'; print('torch', torch.__version__, torch.cuda.get_device_name(0))" || exit 2
step "CUDA tests"
"$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda_paths.py tests/test_fastdata.py 2>&1 | tail -3
step "speed --device cuda"
"$PY" -m benchmarks.measure.speed --device cuda --repeats 5 2>&1 | tee "$OUT/speed_cuda.txt"
step "quick suite on cuda"
"$PY" -m benchmarks run --suite quick --results "$OUT/results" --device cuda --jobs 1 2>&1 | tail -2
step "MiniLM frozen-prefix cache (k = 5) on cuda"
"$PY" -m benchmarks.measure.speed --device cuda --prefix-cache 5 2>&1 | tee "$OUT/prefix_cuda.txt"
step done
