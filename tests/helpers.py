"""Small agents and batches for fast tests."""

import numpy as np

from agents import AGENTS


def tiny_config(agent_name, **overrides):
    config = AGENTS[agent_name].default_config()
    config.update(dict(actor_hidden_dims=(32, 32), value_hidden_dims=(32, 32), batch_size=16))
    config.update(overrides)
    return config


def random_batch(batch_size=16, observation_dim=7, action_dim=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        'observations': rng.normal(size=(batch_size, observation_dim)).astype(np.float32),
        'actions': rng.uniform(-0.99, 0.99, size=(batch_size, action_dim)).astype(np.float32),
        'next_observations': rng.normal(size=(batch_size, observation_dim)).astype(np.float32),
        'rewards': rng.normal(size=(batch_size,)).astype(np.float32),
        'masks': np.ones((batch_size,), np.float32),
    }


def tiny_agent(agent_name, batch, seed=0, **overrides):
    config = tiny_config(agent_name, **overrides)
    return AGENTS[agent_name].create(seed, batch['observations'][:1], batch['actions'][:1], config)
