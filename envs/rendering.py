"""Headless rendering for OGBench's pixel-based tasks: MuJoCo draws their 64 x 64 frames through EGL.

Why: a visual task renders a frame at every step, in data generation and in evaluation, mostly on
machines without a display. MuJoCo chooses its OpenGL backend from MUJOCO_GL once, when it is first
imported; unset, it chooses GLFW, which needs a display. EGL needs none and renders on an NVIDIA GPU
or, through Mesa's llvmpipe, on the CPU; OSMesa failed on the project's CPU machine. So EGL is the
default on Linux, set when the `envs` package is imported (before anything imports MuJoCo); a
MUJOCO_GL the user set is kept, e.g. MUJOCO_GL=osmesa.

Cost on the CPU (Mesa llvmpipe, the project's 2-core machine): 0.15 s per rendered step with the
machine otherwise idle, 0.33 s with it shared by other jobs (load 6.5), against 1 ms for a state step.
About 0.09 s of the 0.15 s are the scenes' two 4096 x 4096 shadow maps; they are part of the official
images, so they stay. A 1001-step episode thus takes 2.5 to 5.5 minutes per worker process, and the
official 1000-episode set days; a GPU's EGL renders a frame far faster.
"""

import os
import platform

# Seconds per rendered step on one idle CPU core (module docstring), for the estimates printed before generating.
CPU_SECONDS_PER_FRAME = 0.15


def use_headless_rendering():
    """MUJOCO_GL=egl on Linux unless the user chose a backend (module docstring: why)."""
    if platform.system() == 'Linux':
        os.environ.setdefault('MUJOCO_GL', 'egl')
