"""The MujocoEnv base class of D4RL's Adroit environments (pen, door, hammer, relocate).

Why: d4rl.hand_manipulation_suite imports `mjrl.envs.mujoco_env.MujocoEnv`, and mjrl is not on
PyPI. This keeps the behaviour the Adroit envs rely on (model loading, the zero-action step
that sizes the observation space, reset, set_state, do_simulation, state_vector, dt), adds
offscreen rgb_array rendering for evaluation videos, and drops mjrl's on-screen viewer and
policy-visualisation helpers.
"""

import os

import gym
import mujoco_py
import numpy as np
from gym import spaces
from gym.utils import seeding


class MujocoEnv(gym.Env):
    """A gym 0.23 environment simulated by mujoco-py from an XML model file."""

    def __init__(self, model_path, frame_skip=1):
        # No super().__init__(): the Adroit classes also inherit from d4rl's OfflineEnv, which
        # they initialise first; going on along the MRO would initialise it again and drop its
        # dataset URL and reference scores.
        if not os.path.exists(model_path):
            raise OSError(f'MuJoCo model file {model_path} does not exist')
        self.sim = mujoco_py.MjSim(mujoco_py.load_model_from_path(model_path))
        self.data = self.sim.data
        self.model = self.sim.model
        self.frame_skip = frame_skip
        self.init_qpos = self.data.qpos.ravel().copy()
        self.init_qvel = self.data.qvel.ravel().copy()

        # Subclasses size their observations in step(); their step() tolerates being called
        # before their own __init__ has finished (mjrl's contract).
        observation, _, done, _ = self.step(np.zeros(self.model.nu))
        assert not done, 'the zero-action step that sizes the observation space ended the episode'
        bounds = self.model.actuator_ctrlrange.copy()
        self.action_space = spaces.Box(bounds[:, 0], bounds[:, 1], dtype=np.float32)
        high = np.inf * np.ones(observation.size)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.seed()

    def seed(self, seed=None):
        """Reseeds `np_random`, which the Adroit envs use to place targets at reset."""
        self.np_random, seed = seeding.np_random(seed)
        return [seed]

    def reset_model(self):
        """Sets the task's initial state and returns the first observation; subclasses implement it."""
        raise NotImplementedError

    def reset(self):
        self.sim.reset()
        self.sim.forward()
        return self.reset_model()

    def set_state(self, qpos, qvel):
        assert qpos.shape == (self.model.nq,) and qvel.shape == (self.model.nv,)
        old = self.sim.get_state()
        self.sim.set_state(mujoco_py.MjSimState(old.time, qpos, qvel, old.act, old.udd_state))
        self.sim.forward()

    @property
    def dt(self):
        return self.model.opt.timestep * self.frame_skip

    def do_simulation(self, ctrl, n_frames):
        self.sim.data.ctrl[:] = ctrl
        for _ in range(n_frames):
            self.sim.step()

    def render(self, mode='rgb_array', width=640, height=480):
        """An offscreen frame (mujoco-py's OSMesa build); mujoco-py returns it upside down."""
        if mode != 'rgb_array':
            raise NotImplementedError(f"only 'rgb_array' rendering is supported, not {mode!r}")
        return self.sim.render(width, height, mode='offscreen')[::-1]

    def state_vector(self):
        state = self.sim.get_state()
        return np.concatenate([state.qpos.flat, state.qvel.flat])
