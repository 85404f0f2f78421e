"""Keeps the simulation stack's chatter out of the project's output.

On a headless machine absl INFO lines (JAX probing for a TPU, dm_control choosing an OpenGL
backend), GLFW's missing-display warning and gymnasium's float32-casting warnings bury the few
lines a run or a tool prints. Every entry point calls `quiet_third_party_output` through
`utils.errors.run_app`; an explicit `--verbosity` still wins, and real warnings still show.
"""

import warnings


def quiet_third_party_output() -> None:
    """absl logging at WARNING; GLFW and gymnasium's known-harmless warnings ignored."""
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    warnings.filterwarnings('ignore', module='glfw')
    warnings.filterwarnings('ignore', message=r'.*WARN: ', category=UserWarning)  # gymnasium.logger.warn
    warnings.filterwarnings('ignore', message='.*precision lowered by casting.*')  # gym's Box
