#!/usr/bin/env bash
# benchmarks/accelerator_check.py in one command on a GPU machine without network, such as the H200
# of ../shared/GPU_NOTES.md: python3 with jax (and its CUDA plugin), chex, absl-py, numpy,
# matplotlib, tqdm and h5py installed; the project's other packages travel as wheels in .whl/.
#
# 1. Once, on a machine with network, in the checkout (8 MB of wheels for Python 3.12, kept out of git):
#      bash benchmarks/gpu_check.sh download
# 2. On the GPU machine, from the checkout root with .whl/ sent along (the device tool: carry ['.whl'],
#    timeout_s 480; the check takes about 6 minutes, compiles included):
#      bash benchmarks/gpu_check.sh            # or: bash benchmarks/gpu_check.sh bf16
#    The wheels go to /tmp/site (PYTHONPATH), the check prints every figure and writes
#    benchmarks/results/accelerator-check/<device>.md, copied to $OUT when that is set.
# Without ogbench, mujoco and dm_control there (dm_control's wheel alone is 56 MB), the check skips
# its main.py run with a printed line; everything else runs.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(ml-collections==1.1.0 distrax==0.1.9 tfp-nightly==0.26.0.dev20261027 flax==0.12.8 optax==0.2.8 dm-tree gast decorator)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64)

if [ "${1:-}" = download ]; then
  exclude="$(git rev-parse --git-path info/exclude)"
  grep -qx '/.whl/' "$exclude" 2>/dev/null || echo /.whl/ >>"$exclude"
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]/#/--platform=}" -d .whl "${WHEELS[@]}"
  exit 0
fi

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
status=0
python3 benchmarks/accelerator_check.py --precision="${1:-default}" || status=$?
if [ -n "${OUT:-}" ] && [ -d benchmarks/results/accelerator-check ]; then
  cp -r benchmarks/results/accelerator-check "$OUT"/
fi
exit "$status"
