"""Routing pictures of a DROL run: for one dataset state, the K candidate actions, their
nearest-candidate cells, the critic's Q contours, the dataset action and its winner, at
several checkpoint steps side by side (the DROL paper's three phases: candidates spread out,
winners hand responsibility over, then stable local improvement).

  python -m scripts.routing_pictures RUN_DIR --state_index=1000 --steps=0,2000,10000

The view is a 2-D slice of the action space: action dimensions `--dims` (the first two by
default) vary over [-1, 1], every other dimension is fixed at the dataset action's value.
Candidates are drawn at their coordinates in those two dimensions. A point's cell is its
nearest candidate in the full action space (the routing rule), so the dataset action always
lies in its winner's cell, while a candidate far from the slice in the other dimensions can
sit outside its own. The same K latents are used at every step, so a candidate's number
follows one latent through training. The contours are the critic's Q (heads aggregated as
the actor's loss aggregates them) on the slice.
"""

import json
import os

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from agents import AGENTS  # noqa: E402
from utils.checkpoints import CheckpointDamaged, checkpoint_path, checkpoint_steps, load_checkpoint  # noqa: E402
from utils.errors import UserError, run_app  # noqa: E402
from utils.fused_updates import data_key  # noqa: E402
from utils.losses import aggregate_heads  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer('state_index', 0, 'Index of the dataset state (row of the training data).')
flags.DEFINE_string('steps', None, 'Comma-separated checkpoint steps (default: up to 4 spread over the run).')
flags.DEFINE_string('dims', '0,1', 'The two action dimensions of the picture.')
flags.DEFINE_integer('latent_seed', 0, 'Seed of the K latents (the same at every step).')
flags.DEFINE_integer('resolution', 200, 'Grid points per axis for the cells and the contours.')
flags.DEFINE_string('png', None, 'Output PNG path (default <run_dir>/routing_state<index>.png).')

DEFAULT_PANELS = 4


def nearest_candidate(points, candidates):
    """Index of the nearest candidate (squared Euclidean distance) of each point: (N, d), (K, d) -> (N,)."""
    distances = np.square(points[:, None, :] - candidates[None, :, :]).sum(axis=-1)
    return np.argmin(distances, axis=-1)


def slice_points(action, dims, resolution):
    """(grid u, grid v, points): the [-1, 1]^2 grid over action dimensions `dims`, every other
    dimension at `action`'s value; points has shape (resolution², action dim)."""
    u, v = np.meshgrid(np.linspace(-1, 1, resolution), np.linspace(-1, 1, resolution))
    points = np.repeat(action[None, :], u.size, axis=0)
    points[:, dims[0]], points[:, dims[1]] = u.ravel(), v.ravel()
    return u, v, points


def routing_view(agent, observation, action, dims, latents, resolution):
    """What one panel shows: candidates (K, d), cells and Q on the slice grid, and the winner."""
    k = latents.shape[0]
    candidates = np.asarray(agent.policy_actions(jnp.repeat(observation[None], k, axis=0), latents))
    u, v, points = slice_points(action, dims, resolution)
    observations = jnp.repeat(observation[None], len(points), axis=0)
    q = aggregate_heads(agent.network.select('critic')(observations, jnp.asarray(points)), agent.config['actor_q_agg'])
    return {
        'candidates': candidates,
        'u': u,
        'v': v,
        'cells': nearest_candidate(points, candidates).reshape(u.shape),
        'q': np.asarray(q).reshape(u.shape),
        'winner': int(nearest_candidate(action[None], candidates)[0]),
    }


def draw_panel(ax, view, action, dims, step, colors):
    k = len(view['candidates'])
    extent = (-1, 1, -1, 1)
    ax.imshow(view['cells'], origin='lower', extent=extent, cmap=colors, vmin=-0.5, vmax=k - 0.5, alpha=0.35)
    contours = ax.contour(
        view['u'], view['v'], view['q'], levels=10, colors='dimgray', linewidths=0.8, linestyles='solid'
    )
    ax.clabel(contours, fontsize=6, fmt='%.3g')
    x, y = view['candidates'][:, dims[0]], view['candidates'][:, dims[1]]
    ax.scatter(x, y, c=np.arange(k), cmap=colors, vmin=-0.5, vmax=k - 0.5, edgecolors='black', s=40, zorder=3)
    for index in range(k):
        ax.annotate(str(index), (x[index], y[index]), xytext=(3, 3), textcoords='offset points', fontsize=6)
    winner = view['winner']
    ax.plot([action[dims[0]], x[winner]], [action[dims[1]], y[winner]], color='red', linewidth=1.2, zorder=3)
    ax.scatter(x[winner], y[winner], s=160, facecolors='none', edgecolors='red', linewidths=2, zorder=4)
    ax.scatter(action[dims[0]], action[dims[1]], marker='*', s=220, color='black', edgecolors='white', zorder=5)
    gap = np.sqrt(np.square(view['candidates'][winner] - action).mean())
    ax.set_title(f'step {step}: winner #{winner}\n(RMS distance to the data {gap:.3f})', fontsize=10)
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_aspect('equal')
    ax.set_xlabel(f'action dim {dims[0]} (action units)')


def legend_handles(colors):
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], marker='o', linestyle='none', color=colors(0), markeredgecolor='black', label='candidates (#)'),
        Line2D([], [], marker='*', linestyle='none', color='black', markersize=14, label='dataset action'),
        Line2D(
            [],
            [],
            marker='o',
            linestyle='none',
            markerfacecolor='none',
            markeredgecolor='red',
            markersize=12,
            markeredgewidth=2,
            label='winner (nearest candidate)',
        ),  # fmt: skip
        Line2D([], [], color='dimgray', label='critic Q contours (labelled with Q)'),
        plt.Rectangle((0, 0), 1, 1, color=colors(0), alpha=0.35, label='nearest-candidate cells'),
    ]


def routing_figure(views, steps, action, dims, title):
    k = len(views[0]['candidates'])
    colors = plt.get_cmap('tab20' if k > 10 else 'tab10', k)
    # At least 10.5 inches wide, so the two-line title and the legend fit however few panels there are.
    fig, axes = plt.subplots(1, len(views), figsize=(max(4.3 * len(views), 10.5), 5.0), squeeze=False)
    for ax, view, step in zip(axes[0], views, steps, strict=True):
        draw_panel(ax, view, action, dims, step, colors)
    axes[0][0].set_ylabel(f'action dim {dims[1]} (action units)')
    fig.legend(handles=legend_handles(colors), loc='lower center', ncol=5, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


# ----------------------------------------------------------------------------------------------
# Reading the run.


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise UserError(f'Cannot read {path}: {error}. Is this a run directory made by main.py?') from error


def load_state(run_dir, record, state_index):
    """(observation, dataset action) of row `state_index` of the run's training data."""
    from envs.env_utils import make_env_and_datasets

    provenance = read_json(os.path.join(run_dir, 'dataset.json'))
    path = provenance.get('path') or record.get('dataset_path')
    path = os.path.expanduser(path) if path else None
    if path and not os.path.exists(path):
        raise UserError(f'The run trained on {path}, which is not there (run this command from where main.py ran).')
    _, train, _, _ = make_env_and_datasets(
        record['env_name'], record.get('dataset_dir', '~/.ogbench/data'), path, record.get('success_timing', 'post')
    )
    size = len(train['observations'])
    if not 0 <= state_index < size:
        raise UserError(f'--state_index={state_index} is outside the dataset (0 to {size - 1}).')
    return np.asarray(train['observations'][state_index]), np.asarray(train['actions'][state_index])


def pick_steps(run_dir, text):
    available = sorted(checkpoint_steps(run_dir))
    if not available:
        raise UserError(f'No checkpoint_<step>.msgpack in {run_dir}.')
    if text is None:
        picks = np.unique(np.linspace(0, len(available) - 1, min(DEFAULT_PANELS, len(available))).round())
        return [available[int(i)] for i in picks]
    try:
        steps = [int(part) for part in text.split(',')]
    except ValueError as error:
        raise UserError(f'--steps={text!r}: give comma-separated checkpoint steps.') from error
    missing = [step for step in steps if step not in available]
    if missing:
        raise UserError(f'No checkpoint at step {missing[0]} in {run_dir}; it has {", ".join(map(str, available))}.')
    return steps


def load_agents(run_dir, record, steps, observation, action):
    config = ml_collections.ConfigDict(record['agent'])
    for key in ('actor_hidden_dims', 'value_hidden_dims'):
        config[key] = tuple(config[key])
    agent_class = AGENTS.get(config.get('agent_name'))
    if agent_class is None or 'num_candidates' not in config:
        raise UserError(f'{run_dir} is a {config.get("agent_name")} run; routing pictures need a DROL run.')
    template = agent_class.create(record['seed'], observation[None], action[None], config)
    agents = []
    for step in steps:
        try:
            agents.append(load_checkpoint(checkpoint_path(run_dir, step), template, data_key(record['seed']))[0])
        except CheckpointDamaged as error:
            raise UserError(f'Checkpoint {error}; choose other --steps.') from error
    return agents


def parse_dims(text, action_dim):
    try:
        dims = [int(part) for part in text.split(',')]
    except ValueError as error:
        raise UserError(f'--dims={text!r}: give two action dimensions, such as 0,1.') from error
    if len(dims) != 2 or dims[0] == dims[1] or not all(0 <= d < action_dim for d in dims):
        raise UserError(f'--dims={text!r}: give two different action dimensions between 0 and {action_dim - 1}.')
    return dims


def make_pictures(run_dir, state_index, steps_text, dims_text, latent_seed, resolution, out):
    record = read_json(os.path.join(run_dir, 'flags.json'))
    steps = pick_steps(run_dir, steps_text)
    observation, action = load_state(run_dir, record, state_index)
    dims = parse_dims(dims_text, len(action))
    agents = load_agents(run_dir, record, steps, observation, action)
    k = agents[0].config['num_candidates']
    latents = agents[0].sample_latents(jax.random.PRNGKey(latent_seed), (k,))
    views = [routing_view(agent, jnp.asarray(observation), action, dims, latents, resolution) for agent in agents]
    title = (
        f'DROL routing on {record["env_name"]} (K={k}), dataset state {state_index}: action dims {dims[0]} and '
        f'{dims[1]} of {len(action)}, other dims fixed at the dataset action\n'
        'cells: nearest candidate in the full action space; contours: critic Q on this slice'
    )
    fig = routing_figure(views, steps, action, dims, title)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out, [view['winner'] for view in views]


def main(argv):
    if len(argv) != 2:
        raise UserError('usage: python -m scripts.routing_pictures RUN_DIR [--state_index=N] [--steps=a,b,c]')
    run_dir = argv[1]
    if not os.path.isdir(run_dir):
        raise UserError(f'{run_dir} is not a folder.')
    if FLAGS.resolution < 2:
        raise UserError(f'--resolution must be at least 2 (got {FLAGS.resolution}).')
    out = FLAGS.png or os.path.join(run_dir, f'routing_state{FLAGS.state_index}.png')
    path, winners = make_pictures(
        run_dir, FLAGS.state_index, FLAGS.steps, FLAGS.dims, FLAGS.latent_seed, FLAGS.resolution, out
    )
    print(f'wrote {path} (winners by step: {", ".join(map(str, winners))})')


if __name__ == '__main__':
    run_app(main)
