"""The fields of a training dataset, named once for the code that builds datasets and the code that samples them.

Why apart from `utils/datasets.py`: the environment code (`envs/env_utils.py`) builds datasets and is imported by
evaluation worker processes, which never run JAX (`utils/env_slots.py`); `utils/datasets.py` imports jax.
"""

TRAINING_KEYS = ('observations', 'actions', 'next_observations', 'rewards', 'masks')
TASK_KEYS = ('rewards', 'masks')  # With several tasks of one family, these get a leading task axis.
