#!/usr/bin/env bash
# Installs the optional D4RL extra (AntMaze v2 and Adroit v1) into the project's Python.
#
#   bash scripts/install_d4rl.sh                  # into .venv/bin/python
#   PYTHON=/path/to/python bash scripts/install_d4rl.sh
#
# Why a script and not requirements.txt: D4RL needs the old MuJoCo 2.1 library, mujoco-py
# (compiled against it on first import), gym 0.23 and Debian GL packages, none of which the
# OGBench runs need. Every step checks before it acts, so running it again is cheap. Missing
# Debian packages are installed with apt-get as root; any other user is asked before sudo runs
# (or, without a terminal, given the command to run).
#
# LD_LIBRARY_PATH: nothing to export. envs/d4rl_utils.py adds MuJoCo's bin folder to it
# (mujoco-py refuses to import otherwise) and loads libmujoco210.so with ctypes, so that
# mujoco-py's compiled module (built without an rpath) finds it and GLEW although the
# dynamic loader read LD_LIBRARY_PATH before the process started; step 2 patches the
# libraries for that. The last step imports through the same code, so a successful run
# proves it works. Only code that imports mujoco_py or d4rl without going through
# envs/d4rl_utils.import_d4rl() needs `export LD_LIBRARY_PATH=$HOME/.mujoco/mujoco210/bin`.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
# mujoco-py looks here, and so does envs/d4rl_utils.py.
MUJOCO_DIR=${MUJOCO_PY_MUJOCO_PATH:-$HOME/.mujoco/mujoco210}
APT_PACKAGES=(gcc libc6-dev libosmesa6-dev libgl1-mesa-dev libglew-dev patchelf)
start=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { echo "[install_d4rl] $*"; }
pip_install() { "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@"; }

if [ ! -x "$PYTHON" ]; then
    echo "No Python at $PYTHON: create the project's venv first, or set PYTHON=/path/to/python." >&2
    exit 2
fi

# 1. Compiler and OpenGL headers: mujoco-py compiles a C extension against OSMesa and GLEW.
missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
# As root (CI, containers) they are installed; otherwise sudo runs only when the user says yes at a
# terminal, and without a terminal the script prints the command for the user to run, and stops.
if [ ${#missing[@]} -gt 0 ]; then
    install=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
    if [ "$(id -u)" -eq 0 ]; then
        step "apt packages (as root): ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
    else
        command="sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
        step "missing Debian packages: ${missing[*]}"
        answer=""
        if [ -t 0 ]; then
            read -r -p "[install_d4rl] Run \`$command\` now (sudo may ask for your password)? [y/N] " answer || true
        fi
        if [[ $answer != [yY]* ]]; then
            echo "Install them with \`$command\`, then rerun \`bash scripts/install_d4rl.sh\`." >&2
            exit 2
        fi
        sudo apt-get update -qq
        sudo env DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
    fi
fi
if ! "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    echo "$PYTHON has no C headers (Python.h); install its -dev package (e.g. python3-dev) and rerun." >&2
    exit 2
fi

# 2. MuJoCo 2.1.0. Its official download site is often unreachable; the same binaries ship in
# the free-mujoco-py wheel on PyPI. pip only accepts that wheel for Python <= 3.9, so it is
# downloaded as a file (never installed) and just the Linux binaries are unpacked.
if [ ! -f "$MUJOCO_DIR/bin/libmujoco210.so" ]; then
    step "MuJoCo 2.1.0 binaries -> $MUJOCO_DIR"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps free-mujoco-py==2.1.6 \
        --python-version 3.9 --only-binary=:all: -d "$work"
    "$PYTHON" - "$work"/free_mujoco_py-*.whl "$work/mujoco210" <<'EOF'
import os, sys, zipfile
wheel, target = sys.argv[1:]
prefix = 'mujoco_py/binaries/linux/mujoco210/'
with zipfile.ZipFile(wheel) as archive:
    for member in archive.infolist():
        if member.filename.startswith(prefix) and not member.is_dir():
            path = os.path.join(target, member.filename[len(prefix):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with archive.open(member) as source, open(path, 'wb') as destination:
                destination.write(source.read())
            os.chmod(path, (member.external_attr >> 16) & 0o777 or 0o644)
EOF
    # Moved into place only when complete, so an interrupted run is redone, not half-used.
    mkdir -p "$(dirname "$MUJOCO_DIR")"
    rm -rf "$MUJOCO_DIR"
    mv "$work/mujoco210" "$MUJOCO_DIR"
fi
# mujoco-py's compiled module links libmujoco210.so and libglewosmesa.so by bare name; the
# loader finds them only through LD_LIBRARY_PATH or as already-loaded libraries with those
# SONAMEs. envs/d4rl_utils.py loads libmujoco210.so itself, so it must carry its SONAME and
# pull in what it uses without linking it: GLEW (found next to it) and GLEW's OSMesa.
# One patchelf call per change: patchelf 0.14 (Debian 12) mixes up several in one call.
osmesa=$("$PYTHON" -c 'import ctypes.util; print(ctypes.util.find_library("OSMesa"))')
glew=$MUJOCO_DIR/bin/libglewosmesa.so
mujoco=$MUJOCO_DIR/bin/libmujoco210.so
if ! patchelf --print-needed "$glew" | grep -qx "$osmesa"; then
    step "patching libglewosmesa.so: SONAME, needs $osmesa"
    patchelf --set-soname libglewosmesa.so "$glew"
    patchelf --add-needed "$osmesa" "$glew"
fi
if ! patchelf --print-needed "$mujoco" | grep -qx libglewosmesa.so; then
    step "patching libmujoco210.so: SONAME, needs libglewosmesa.so, finds it next to itself"
    patchelf --set-soname libmujoco210.so "$mujoco"
    patchelf --set-rpath '$ORIGIN' "$mujoco"
    patchelf --add-needed libglewosmesa.so "$mujoco"
fi

# 3. Python packages. mujoco-py 2.1.2.14 compiles with Cython < 3 only. d4rl's declared
# dependencies (pybullet, dm-control, ...) serve environments the project does not use, so
# d4rl comes without them; shimmy without extras, as its gym-v21 extra pins numpy < 2.
if ! "$PYTHON" -c 'import importlib.metadata as m; assert m.version("d4rl") == "1.1" and m.version("mujoco-py") == "2.1.2.14" and m.version("gym") == "0.23.1" and m.version("shimmy") == "2.0.1" and int(m.version("Cython").split(".")[0]) < 3' 2>/dev/null; then
    step "pip: mujoco-py, Cython<3, gym, shimmy, d4rl"
    pip_install "mujoco-py==2.1.2.14" "Cython<3" "gym==0.23.1" "shimmy==2.0.1"
    pip_install --no-deps "d4rl==1.1"
fi
# Reinstalled every run (a few seconds) so that edits to the repo's copy take effect; built
# from a copy, as pip builds in place and would leave build/ and *.egg-info in the repo.
step "pip: mjrl compat package from envs/mjrl_compat"
cp -r "$REPO/envs/mjrl_compat" "$work/mjrl_compat"
pip_install --force-reinstall --no-deps "$work/mjrl_compat"

# 4. First import compiles mujoco-py (about a minute) and checks that both suites make,
# reset and step.
step "checking AntMaze and Adroit (the first run compiles mujoco-py)"
cd "$REPO"
"$PYTHON" - <<'EOF'
import numpy as np
from envs import d4rl_utils
for name in ('antmaze-umaze-v2', 'pen-human-v1'):
    env = d4rl_utils.make_env(name)
    env.reset(seed=0)
    env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    env.close()
    print(f'[install_d4rl] {name}: ok')
EOF
step "done in $((SECONDS - start)) s"
