"""Stand-in for mjrl: only `mjrl.envs.mujoco_env.MujocoEnv`, the base class of D4RL's Adroit envs."""
