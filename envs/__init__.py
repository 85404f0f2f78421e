"""Environments and datasets. Importing the package makes MuJoCo render headless (envs/rendering.py)."""

from envs.rendering import use_headless_rendering

use_headless_rendering()
