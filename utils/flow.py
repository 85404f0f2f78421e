"""Flow matching on the linear path, shared by the flow policies (FQL's BC flow, IFQL's policy)."""

import jax
import jax.numpy as jnp


def flow_matching_loss(velocity, observations, actions, x_rng, t_rng):
    """mean |v(s, x_t, t) - (x_1 - x_0)|^2 on x_t = (1 - t) x_0 + t x_1, x_0 ~ N(0, I), t ~ U(0, 1), x_1 = a."""
    x_0 = jax.random.normal(x_rng, actions.shape)
    t = jax.random.uniform(t_rng, (*actions.shape[:-1], 1))
    x_t = (1 - t) * x_0 + t * actions
    return jnp.square(velocity(observations, x_t, t) - (actions - x_0)).mean()


def euler_actions(velocity, observations, noises, steps):
    """Euler integration of v from x_0 = noises over `steps` steps (times i / steps), clipped to [-1, 1]."""

    def euler_step(actions, i):
        times = jnp.full((*actions.shape[:-1], 1), i / steps)
        return actions + velocity(observations, actions, times) / steps, None

    actions, _ = jax.lax.scan(euler_step, noises, jnp.arange(steps))
    return jnp.clip(actions, -1, 1)
