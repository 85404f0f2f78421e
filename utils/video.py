"""Evaluation videos as GIFs (Pillow ships with matplotlib; no video codec needed)."""

import os

import numpy as np
from PIL import Image


def save_gif(frames, path, fps=15):
    if not frames:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    images = [Image.fromarray(np.asarray(frame, dtype=np.uint8)) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
