"""Side-by-side DROL vs FQL report of a sweep folder: Markdown table, learning curves, routing.

  python -m scripts.report exp/sweeps/ogbench-default --out docs/results/my_sweep

Scores follow the FQL protocol: OGBench = mean success (x100) of the last three
evaluations, D4RL = normalised return of the last evaluation; mean +- std over seeds.
Runs whose eval.csv is missing or stops before the run's final step are listed as such
and left out of the scores, never dropped silently.
"""

import csv
import json
import os
from collections import defaultdict

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from envs.d4rl_utils import is_d4rl_env  # noqa: E402
from utils.errors import UserError, exit_on_user_error  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string('out', None, 'Output folder (default <sweep_dir>/report).')

AGENTS = ('drol', 'fql')
ROUTING_METRICS = ('training/actor/candidate_pairwise_dist', 'training/actor/duplicate_share', 'training/actor/bc_loss')
# Published numbers: the spec gives none, so this table starts empty; add (env, agent): score here.
PUBLISHED = {}


def read_rows(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def load_run(run_dir):
    """A run's identity, status, evaluation rows and training rows."""
    with open(os.path.join(run_dir, 'flags.json')) as f:
        flags_record = json.load(f)
    run = {'dir': run_dir, 'env': flags_record['env_name'], 'agent': flags_record['agent']['agent_name'],
           'seed': flags_record['seed'], 'final_step': flags_record['offline_steps'], 'eval': [], 'train': [],
           'settings': settings_of(flags_record)}
    eval_path, train_path = os.path.join(run_dir, 'eval.csv'), os.path.join(run_dir, 'train.csv')
    if os.path.exists(train_path):
        run['train'] = read_rows(train_path)
    if not os.path.exists(eval_path):
        run['status'] = 'missing eval.csv'
        return run
    run['eval'] = read_rows(eval_path)
    last = int(float(run['eval'][-1]['step'])) if run['eval'] else 0
    run['status'] = 'ok' if last >= run['final_step'] else f'partial: last evaluation at step {last} of {run["final_step"]}'
    return run


SETTING_KEYS = ('actor_hidden_dims', 'value_hidden_dims', 'batch_size', 'num_candidates', 'bc_coef', 'alpha',
                'discount', 'q_agg')


def settings_of(flags_record):
    """The settings that make a comparison comparable: network sizes, budget and coefficients."""
    agent = flags_record['agent']
    picked = {key: agent[key] for key in SETTING_KEYS if key in agent}
    picked['offline_steps'] = flags_record['offline_steps']
    return ', '.join(f'{k}={tuple(v) if isinstance(v, list) else v}' for k, v in picked.items())


def settings_table(runs):
    seen = sorted({(run['env'], run['agent'], run['settings']) for run in runs})
    lines = ['| task | agent | settings |', '| --- | --- | --- |']
    return '\n'.join(lines + [f'| {env} | {agent} | {settings} |' for env, agent, settings in seen])


def score(run):
    """FQL protocol score of a finished run."""
    if is_d4rl_env(run['env']):
        return float(run['eval'][-1]['evaluation/normalized_return'])
    return 100.0 * float(np.mean([float(row['evaluation/success']) for row in run['eval'][-3:]]))


def task_group(env_name):
    """OGBench tasks group by family (the name without -taskN); D4RL by domain."""
    if is_d4rl_env(env_name):
        return env_name.split('-')[0]
    return env_name.split('-task')[0]


def find_runs(sweep_dir):
    runs = []
    for folder, _, files in os.walk(sweep_dir):
        if 'flags.json' in files:
            runs.append(load_run(folder))
    if not runs:
        raise UserError(f'No runs (folders with flags.json) under {sweep_dir}.')
    return sorted(runs, key=lambda r: (r['env'], r['agent'], r['seed']))


def mean_std(values):
    if not values:
        return '-'
    return f'{np.mean(values):.1f} ± {np.std(values):.1f} (n={len(values)})'


def markdown_table(runs):
    scores = defaultdict(list)  # (env, agent) -> per-seed scores
    for run in runs:
        if run['status'] == 'ok':
            scores[(run['env'], run['agent'])].append(score(run))
    envs = sorted({run['env'] for run in runs})
    lines = ['| task | DROL | FQL | published DROL | published FQL |', '| --- | --- | --- | --- | --- |']
    groups = defaultdict(list)
    for env in envs:
        groups[task_group(env)].append(env)
        lines.append(f'| {env} | {mean_std(scores[(env, "drol")])} | {mean_std(scores[(env, "fql")])} | '
                     f'{PUBLISHED.get((env, "drol"), "-")} | {PUBLISHED.get((env, "fql"), "-")} |')
    for group, members in sorted(groups.items()):
        if len(members) > 1:
            cells = []
            for agent in AGENTS:
                per_task = [np.mean(scores[(env, agent)]) for env in members if scores[(env, agent)]]
                cells.append(f'{np.mean(per_task):.1f} ({len(per_task)} tasks)' if per_task else '-')
            lines.append(f'| **{group}** (task mean) | {cells[0]} | {cells[1]} | - | - |')
    problems = [run for run in runs if run['status'] != 'ok']
    if problems:
        lines += ['', 'Runs left out of the scores:', '']
        lines += [f'- `{run["dir"]}`: {run["status"]}' for run in problems]
    return '\n'.join(lines)


def bootstrap_band(matrix, rng, samples=1000):
    """Mean over seeds (rows) with a 95% bootstrap interval at each column."""
    means = matrix.mean(axis=0)
    if matrix.shape[0] < 2:
        return means, means, means
    picks = rng.integers(0, matrix.shape[0], size=(samples, matrix.shape[0]))
    boot = matrix[picks].mean(axis=1)
    return means, np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)


def curves(runs, key, rows_of):
    """{agent: (steps, seeds x steps matrix)} over the steps every seed has logged."""
    result = {}
    for agent in AGENTS:
        series = [{int(float(r['step'])): float(r[key]) for r in rows_of(run) if r.get(key) not in (None, '')}
                  for run in runs if run['agent'] == agent]
        series = [s for s in series if s]
        if not series:
            continue
        steps = sorted(set.intersection(*(set(s) for s in series)))
        if steps:
            result[agent] = (np.array(steps), np.array([[s[t] for t in steps] for s in series]))
    return result


def plot_learning_curves(runs, env, out_dir, rng):
    env_runs = [run for run in runs if run['env'] == env]
    key = 'evaluation/normalized_return' if is_d4rl_env(env) else 'evaluation/success'
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for agent, (steps, matrix) in curves(env_runs, key, lambda run: run['eval']).items():
        scale = 1.0 if is_d4rl_env(env) else 100.0
        mean, low, high = bootstrap_band(matrix * scale, rng)
        ax.plot(steps, mean, label=f'{agent.upper()} (n={matrix.shape[0]})')
        ax.fill_between(steps, low, high, alpha=0.25)
    ax.set_xlabel('gradient steps')
    ax.set_ylabel('normalised return' if is_d4rl_env(env) else 'success rate (%)')
    ax.set_title(env)
    ax.legend()
    fig.tight_layout()
    path = os.path.join(out_dir, f'curve_{env}.png')
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_routing(runs, env, out_dir, rng):
    env_runs = [run for run in runs if run['env'] == env and run['agent'] == 'drol']
    if not env_runs:
        return None
    fig, axes = plt.subplots(1, len(ROUTING_METRICS), figsize=(4 * len(ROUTING_METRICS), 3.2))
    for ax, key in zip(axes, ROUTING_METRICS):
        for _, (steps, matrix) in curves(env_runs, key, lambda run: run['train']).items():
            mean, low, high = bootstrap_band(matrix, rng)
            ax.plot(steps, mean)
            ax.fill_between(steps, low, high, alpha=0.25)
        ax.set_title(key.split('/')[-1])
        ax.set_xlabel('gradient steps')
    fig.suptitle(f'DROL routing diagnostics: {env}')
    fig.tight_layout()
    path = os.path.join(out_dir, f'routing_{env}.png')
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(sweep_dir, out_dir):
    runs = find_runs(sweep_dir)
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    sections = ['# DROL vs FQL', '', f'Sweep: `{sweep_dir}`. Scores: OGBench = success rate (%) averaged over the '
                'last three evaluations; D4RL = normalised return of the last evaluation; mean ± std over seeds.',
                '', markdown_table(runs), '', '## Settings', '', settings_table(runs), '']
    for env in sorted({run['env'] for run in runs}):
        curve = plot_learning_curves(runs, env, out_dir, rng)
        sections.append(f'![{env}]({os.path.basename(curve)})')
        routing = plot_routing(runs, env, out_dir, rng)
        if routing:
            sections.append(f'![routing {env}]({os.path.basename(routing)})')
    path = os.path.join(out_dir, 'README.md')
    with open(path, 'w') as f:
        f.write('\n'.join(sections) + '\n')
    return path


@exit_on_user_error
def main(argv):
    if len(argv) != 2:
        raise UserError('usage: python -m scripts.report SWEEP_DIR [--out DIR]')
    sweep_dir = argv[1]
    if not os.path.isdir(sweep_dir):
        raise UserError(f'{sweep_dir} is not a folder.')
    print(f'wrote {write_report(sweep_dir, FLAGS.out or os.path.join(sweep_dir, "report"))}')


if __name__ == '__main__':
    app.run(main)
