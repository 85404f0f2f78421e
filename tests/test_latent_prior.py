"""DROL's bounded prior: uniform in the ball of radius sqrt(d)."""

import jax
import numpy as np
import pytest
from scipy import stats

from utils.latents import sample_ball

N = 20000


def radius_ks_statistic(radii, dim):
    """KS distance of (r / R)^d from U(0, 1): zero in law exactly when r = R * u^(1/d)."""
    return stats.kstest((radii / np.sqrt(dim)) ** dim, 'uniform').statistic


@pytest.mark.parametrize('dim', [1, 2, 5, 8])
def test_samples_lie_in_ball(dim):
    z = np.asarray(sample_ball(jax.random.PRNGKey(dim), (N,), dim))
    assert z.shape == (N, dim)
    assert np.all(np.linalg.norm(z, axis=-1) <= np.sqrt(dim) + 1e-5)


@pytest.mark.parametrize('dim', [2, 5, 8])
def test_radius_follows_u_to_the_one_over_d(dim):
    radii = np.linalg.norm(np.asarray(sample_ball(jax.random.PRNGKey(0), (N,), dim)), axis=-1)
    threshold = 0.015  # About 2x the 99% KS critical value for N = 20000.
    assert radius_ks_statistic(radii, dim) < threshold

    # The same test rejects the wrong priors it guards against.
    rng = np.random.default_rng(0)
    gaussian_radii = np.minimum(np.linalg.norm(rng.normal(size=(N, dim)), axis=-1), np.sqrt(dim))
    uniform_radii = np.sqrt(dim) * rng.uniform(size=N)
    assert radius_ks_statistic(gaussian_radii, dim) > threshold
    assert radius_ks_statistic(uniform_radii, dim) > threshold


def test_directions_are_isotropic():
    z = np.asarray(sample_ball(jax.random.PRNGKey(1), (N,), 3))
    directions = z / np.linalg.norm(z, axis=-1, keepdims=True)
    np.testing.assert_allclose(directions.mean(axis=0), 0.0, atol=0.03)
