"""The online replay buffer: a ring of the newest transitions, kept on the device and sampled there.

The FQL codebase keeps a NumPy buffer on the host. Here the buffer is a pytree of fixed-size
device arrays plus a count of the transitions ever added, so adding and sampling are pure
functions that jit, vmap over seeds and checkpoint like any other state.

The FQL codebase's two modes are one idea here: a first-in-first-out window over a sequence.
Without balanced sampling its buffer is the offline dataset extended by the online transitions,
holding the newest `max(buffer_size, n + 1)` of them (offline rows are overwritten once it is
full); with balanced sampling the sequence is the online transitions alone, `buffer_size` of
them. `sample` draws uniformly from the newest `window` elements of [offline rows, online
transitions] without copying the offline data: the ring only needs room for the online
transitions that the window can hold, at most one per online step.
"""

import flax
import jax
import jax.numpy as jnp

from utils.dataset_keys import TRAINING_KEYS


class ReplayBuffer(flax.struct.PyTreeNode):
    data: dict  # key -> (capacity, ...) float32 ring of online transitions.
    count: jax.Array  # Transitions ever added (int32); the newest sits at (count - 1) % capacity.

    @classmethod
    def create(cls, observation_dim, action_dim, capacity):
        shapes = {
            'observations': (observation_dim,),
            'actions': (action_dim,),
            'next_observations': (observation_dim,),
            'rewards': (),
            'masks': (),
        }
        data = {key: jnp.zeros((capacity, *shapes[key]), jnp.float32) for key in TRAINING_KEYS}
        return cls(data=data, count=jnp.zeros((), jnp.int32))

    @property
    def capacity(self):
        return self.data['observations'].shape[0]

    def add(self, transition):
        """The buffer with `transition` (a dict of TRAINING_KEYS) written over the oldest entry when full."""
        index = self.count % self.capacity
        data = {key: self.data[key].at[index].set(transition[key]) for key in TRAINING_KEYS}
        return self.replace(data=data, count=self.count + 1)

    def sample(self, rng, batch_size, window, offline=None):
        """Uniform batch (with replacement) from the newest `window` elements of the sequence
        [offline rows (if given), online transitions], with `next_actions` as `sample_batch` gives them:
        the action of the element after each drawn one in that sequence (the newest repeats its own)."""
        rows = 0 if offline is None else offline['observations'].shape[0]
        total = rows + self.count
        held = jnp.minimum(total, window)
        drawn = total - held + jax.random.randint(rng, (batch_size,), 0, held)
        batch = self._gather(drawn, offline, rows)
        batch['next_actions'] = self._gather(jnp.minimum(drawn + 1, total - 1), offline, rows)['actions']
        return batch

    def _gather(self, positions, offline, rows):
        """The elements at sequence `positions`: offline row, or the ring entry of that online transition."""
        online = {key: value[(positions - rows) % self.capacity] for key, value in self.data.items()}
        if offline is None:
            return online
        in_offline = positions < rows
        index = jnp.minimum(positions, rows - 1)
        return {
            key: jnp.where(in_offline.reshape(-1, *[1] * (value.ndim - 1)), offline[key][index], value)
            for key, value in online.items()
        }
