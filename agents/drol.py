"""DROL: Dynamic Routing for Offline RL.

A one-step actor pi(s, z) with a bounded latent prior. Each state gets K candidate actions;
each dataset action is routed to its nearest candidate (top-1) and only that winner is
trained, with behaviour cloning plus critic guidance. Equations: docs/algorithm.md.

Cost: the K*B candidates are needed only for the argmin, which carries no gradient, so they
are formed under `stop_gradient` and the actor and critic are evaluated with gradient on
the B winners alone. The gradient equals that of backpropagating through all K*B
candidates (only winners receive any) at a fraction of the cost.
"""

import jax
import jax.numpy as jnp

from agents.one_step import OneStepActorCritic, base_config
from utils.latents import sample_ball
from utils.losses import aggregate_heads, q_loss

# Per-environment settings (sources: docs/algorithm.md). OGBench family -> (bc_coef, other settings,
# tuned K of DROL*); D4RL dataset -> (bc_coef, other settings, DROL* bc_coef, DROL* K).
OGBENCH_PRESETS = {
    'antmaze-large-navigate': (0.03, {'discount': 0.995, 'q_agg': 'min'}, 16),
    'antmaze-giant-navigate': (0.03, {'discount': 0.995, 'q_agg': 'min'}, 1),
    'humanoidmaze-medium-navigate': (0.3, {'discount': 0.995}, 16),
    'humanoidmaze-large-navigate': (0.3, {'discount': 0.995}, 4),
    'antsoccer-arena-navigate': (0.1, {'discount': 0.995}, 4),
    'cube-single-play': (10.0, {}, 16),
    'cube-double-play': (3.0, {}, 64),
    'scene-play': (3.0, {}, 64),
    'puzzle-3x3-play': (0.3, {}, 32),
    'puzzle-4x4-play': (10.0, {}, 64),
}
# A pixel-based family ('visual-cube-single-play') takes its state family's row: the DROL paper ran no
# pixel-based tasks, so no visual setting is published, and `preset_note` says so at start.
VISUAL_PREFIX = 'visual-'
D4RL_PRESETS = {
    'antmaze-umaze-v2': (0.3, {}, 0.3, 2),
    'antmaze-umaze-diverse-v2': (0.1, {}, 0.1, 16),
    'antmaze-medium-play-v2': (0.1, {}, 0.1, 32),
    'antmaze-medium-diverse-v2': (0.1, {}, 0.1, 16),
    'antmaze-large-play-v2': (0.1, {}, 0.03, 16),
    'antmaze-large-diverse-v2': (0.1, {}, 0.03, 16),
    **{
        f'{task}-{kind}-v1': (bc, {'q_agg': 'min'}, bc, k)
        for task, bc, k in (('pen', 1.0, 16), ('door', 10.0, 8), ('hammer', 3.0, 8), ('relocate', 10.0, 32))
        for kind in ('human', 'cloned', 'expert')
    },
}


class DROLAgent(OneStepActorCritic):
    aggregation_keys = ('q_agg', 'critic_selection_q_agg', 'actor_q_agg', 'best_of_n_q_agg')

    def sample_latents(self, rng, batch_shape):
        return sample_ball(rng, batch_shape, self.config['action_dim'])

    def route(self, observations, actions, params, rng):
        """K candidates per state (no gradient), their latents, distances to the data, and winners."""
        latents = self.sample_latents(rng, (*actions.shape[:-1], self.config['num_candidates']))  # (B, K, d)
        candidates = jax.lax.stop_gradient(self.policy_actions(observations, latents, params=params))
        distances = jnp.square(candidates - actions[..., None, :]).sum(axis=-1)  # (B, K)
        winners = jnp.argmin(distances, axis=-1)
        return candidates, latents, distances / actions.shape[-1], winners

    def actor_loss(self, batch, grad_params, rng):
        observations, actions = batch['observations'], batch['actions']
        mse_rng, noise_rng = jax.random.split(rng)
        candidates, latents, distances, winners = self.route(observations, actions, grad_params, noise_rng)
        winner_latents = jnp.take_along_axis(latents, winners[:, None, None], axis=1)[:, 0]
        winner_actions = self.policy_actions(observations, winner_latents, params=grad_params)

        bc_loss = jnp.square(winner_actions - actions).mean()
        q = aggregate_heads(self.network.select('critic')(observations, winner_actions), self.config['actor_q_agg'])
        actor_q_loss = q_loss(q, self.config['normalize_q_loss'])
        actor_loss = self.config['bc_coef'] * bc_loss + self.config['q_coef'] * actor_q_loss

        sample = self.policy_actions(observations, self.policy_latents(mse_rng, self.batch_shape(observations)))
        return actor_loss, {
            'actor_loss': actor_loss,
            'bc_loss': bc_loss,
            'q_loss': actor_q_loss,
            'q': q.mean(),
            'mse': jnp.square(sample - actions).mean(),  # One plain policy sample against the data.
            **routing_diagnostics(candidates, distances, winners, self.config['duplicate_threshold']),
        }

    @jax.jit
    def sample_actions(self, observations, seed=None, temperature=1.0):
        """One pass by default; with `best_of_n`, the critic's pick among N policy samples."""
        seed = self.rng if seed is None else seed
        num = self.config['best_of_n_candidates']
        if not self.config['best_of_n'] or num <= 1:
            return self.policy_actions(observations, self.policy_latents(seed, self.batch_shape(observations)))
        latents = self.sample_latents(seed, (*self.batch_shape(observations), num))
        candidates = self.policy_actions(observations, latents)  # (..., N, d): each state with its N latents.
        if self.config['density_filter']:
            # Keep the candidates with the smallest mean squared distance to the others.
            pairwise = jnp.square(candidates[..., :, None, :] - candidates[..., None, :, :]).sum(-1)
            mean_pairwise = pairwise.sum(-1) / max(num - 1, 1)
            dense = jnp.argsort(mean_pairwise, axis=-1)[..., : min(self.config['density_keep'], num)]
            candidates = jnp.take_along_axis(candidates, dense[..., None], axis=-2)
        scores = aggregate_heads(
            self.network.select('critic')(observations, candidates), self.config['best_of_n_q_agg']
        )
        best = jnp.argmax(scores, axis=-1)
        return jnp.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]

    @classmethod
    def create(cls, seed, ex_observations, ex_actions, config):
        return cls.build(seed, ex_observations, ex_actions, config, extra_modules={})

    @classmethod
    def inference_module_names(cls, config):
        """Best-of-N asks the critic to rank candidates; plain inference needs the actor only."""
        return ('modules_actor', 'modules_critic') if config['best_of_n'] else ('modules_actor',)

    @classmethod
    def config_problems(cls, config):
        problems = super().config_problems(config)
        if config.num_candidates < 1:
            problems.append(f'num_candidates (K) must be at least 1 (got {config.num_candidates}).')
        if config.bc_coef < 0 or config.q_coef < 0:
            problems.append('bc_coef and q_coef must not be negative.')
        if config.best_of_n_candidates < 1:
            problems.append('best_of_n_candidates must be at least 1.')
        if not 1 <= config.density_keep <= config.best_of_n_candidates:
            problems.append('density_keep must lie between 1 and best_of_n_candidates.')
        if config.duplicate_threshold < 0:
            problems.append('duplicate_threshold must not be negative.')
        return problems

    @classmethod
    def preset_overrides(cls, preset, env_key):
        """'paper': the paper's bc_coef (and discount, q_agg); 'drol_star': plus DROL*'s tuned K
        (and, on D4RL, its bc_coef)."""
        if preset not in ('paper', 'drol_star'):
            return {}
        star = preset == 'drol_star'
        state_key = env_key.removeprefix(VISUAL_PREFIX)
        if state_key in OGBENCH_PRESETS:
            bc_coef, other, tuned_k = OGBENCH_PRESETS[state_key]
            return {'bc_coef': bc_coef, **other, **({'num_candidates': tuned_k} if star else {})}
        if env_key in D4RL_PRESETS:
            bc_coef, other, star_bc_coef, star_k = D4RL_PRESETS[env_key]
            if star:
                return {'bc_coef': star_bc_coef, 'num_candidates': star_k, **other}
            return {'bc_coef': bc_coef, **other}
        return {}

    @classmethod
    def preset_note(cls, preset, env_key, online=False, explicit_keys=()):
        """On a pixel-based family: that its bc_coef is the state family's, not a published value."""
        state_key = env_key.removeprefix(VISUAL_PREFIX)
        if preset == 'none' or state_key == env_key or state_key not in OGBENCH_PRESETS or 'bc_coef' in explicit_keys:
            return ''
        return (
            f'The DROL paper ran no pixel-based tasks and publishes no bc_coef for {env_key}: using the state '
            f"family {state_key}'s bc_coef={OGBENCH_PRESETS[state_key][0]} (choose another with --agent.bc_coef=...)."
        )


def routing_diagnostics(candidates, distances, winners, duplicate_threshold):
    """How the K candidates spread and how the data is routed among them (the references' metrics,
    plus two collapse alarms that look at the candidates themselves).

    `distances` are per-dimension squared distances to the dataset action, shape (B, K). The
    winner's slot index is exchangeable (fresh latents every step), so its entropy stays near
    log K even when all candidates coincide; `duplicate_share` (pairs closer than the
    threshold, per dimension) and `routing_margin` (second-nearest minus nearest distance)
    do see collapse.
    """
    num_candidates, action_dim = candidates.shape[-2:]
    selected = jnp.take_along_axis(distances, winners[:, None], axis=1)[:, 0]
    center = candidates.mean(axis=1, keepdims=True)
    pairwise = jnp.square(candidates[:, :, None, :] - candidates[:, None, :, :]).sum(-1) / action_dim  # (B, K, K)
    off_diagonal = 1.0 - jnp.eye(num_candidates)
    num_pairs = max(num_candidates * (num_candidates - 1), 1)
    pairwise_mean = ((pairwise * off_diagonal).sum(axis=(1, 2)) / num_pairs).mean()
    shares = jax.nn.one_hot(winners, num_candidates).mean(axis=0)
    if num_candidates > 1:
        nearest_two = -jax.lax.top_k(-distances, 2)[0]
        margin = (nearest_two[:, 1] - nearest_two[:, 0]).mean()
    else:
        margin = jnp.zeros(())
    return {
        'gate': jnp.exp(-selected / 0.1).mean(),  # The authors' logged closeness of the winners.
        'min_d2': distances.min(axis=-1).mean(),
        'candidate_divergence': (jnp.square(candidates - center).sum(-1) / action_dim).mean(),
        'candidate_pairwise_dist2': pairwise_mean,
        'candidate_pairwise_dist': jnp.sqrt(jnp.maximum(pairwise_mean, 0.0)),
        'best_idx_entropy': -jnp.sum(shares * jnp.log(jnp.maximum(shares, 1e-8))),
        'best_idx_max_prob': shares.max(),
        'duplicate_share': ((pairwise < duplicate_threshold) * off_diagonal).sum(axis=(1, 2)).mean() / num_pairs,
        'routing_margin': margin,
    }


def get_config():
    config = base_config()
    config.update(
        dict(
            agent_name='drol',
            num_candidates=16,  # K.
            bc_coef=1.0,
            q_coef=1.0,
            actor_q_agg='min',
            best_of_n=False,  # Inference only: pick the critic's best of N policy samples.
            best_of_n_candidates=32,
            density_filter=False,  # With best_of_n: keep the `density_keep` densest candidates first.
            density_keep=8,
            best_of_n_q_agg='mean',  # Heads' aggregation when best_of_n ranks candidates.
            duplicate_threshold=1e-4,  # Candidate pairs closer than this (per dimension) count as duplicates.
        )
    )
    return config
