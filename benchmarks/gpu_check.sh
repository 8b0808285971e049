#!/usr/bin/env bash
# One-shot check on a CUDA machine: kernel tests natively on CUDA, then the GPU scale benchmark.
# Usage: OUT=/some/dir bash benchmarks/gpu_check.sh   (logs and results go under $OUT)
set -u
OUT=${OUT:-/tmp/gpucheck}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src:${PYTHONPATH:-}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" > "$OUT/nvidia-smi.txt"
head -15 "$OUT/nvidia-smi.txt"
if python3 -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  # about 7.5 minutes in all: the tests, the tiling sweep, the benchmark, then the tiling tests
  timeout 90 python3 -m pytest -q -p no:cacheprovider tests/kernels -k "not tiling" \
    > "$OUT/kernels.log" 2>&1
  k=$?
  timeout 100 python3 benchmarks/kernel_sweep.py --budget-s 75 --out "$OUT/sweep" \
    > "$OUT/sweep.log" 2>&1
  w=$?
  timeout 220 python3 benchmarks/scale.py --device cuda --preset gpu --dtype bfloat16 --losses ranknet,lambdaloss,info_nce,supcon \
    --out "$OUT/scale-gpu" > "$OUT/scale.log" 2>&1
  s=$?
  timeout 50 python3 -m pytest -q -p no:cacheprovider tests/kernels -k "tiling" -x \
    > "$OUT/kernels-tiling.log" 2>&1
  t=$?
else
  echo "CUDA not available: skipping kernel tests and the GPU benchmark" | tee "$OUT/kernels.log"
  k=skipped; w=skipped; s=skipped; t=skipped
fi
echo "== summary =="
echo "kernel tests: rc=$k  $(tail -1 "$OUT/kernels.log")"
echo "tiling sweep: rc=$w"
echo "scale gpu:    rc=$s"
echo "tiling tests: rc=$t  $(tail -1 "$OUT/kernels-tiling.log" 2>/dev/null)"
[ -f "$OUT/sweep/sweep.md" ] && cat "$OUT/sweep/sweep.md"
[ -f "$OUT/scale-gpu/scale.md" ] && cat "$OUT/scale-gpu/scale.md"
