"""Frame stacking of evaluation observations, as the FQL codebase stacks them for pixel-based tasks.

Why: with `--frame_stack=N` an agent is trained on the last N frames of an episode concatenated on
the channel axis (64 x 64 x 3N), the first frame repeated at an episode's start; its evaluation
must see observations built the same way. gymnasium's FrameStackObservation keeps that rolling
window (padding "reset" repeats the reset frame, as the reference's FrameStackWrapper does) on a
new leading axis; `ChannelFrameStack` concatenates it on the last axis instead, as the reference
does. The reference also stacks `info['goal']` at reset; single-task agents never read it, so
it is left alone here.
"""

import gymnasium
import numpy as np


class ChannelFrameStack(gymnasium.ObservationWrapper):
    """The last `num_stack` observations of the episode, oldest first, concatenated on the last axis."""

    def __init__(self, env, num_stack):
        stacked = gymnasium.wrappers.FrameStackObservation(env, num_stack, padding_type='reset')
        super().__init__(stacked)
        space = env.observation_space
        self.observation_space = gymnasium.spaces.Box(
            low=np.concatenate([space.low] * num_stack, axis=-1),
            high=np.concatenate([space.high] * num_stack, axis=-1),
            dtype=space.dtype,
        )

    def observation(self, observation):
        return np.concatenate(list(observation), axis=-1)
