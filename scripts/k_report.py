"""Figures and tables of the K suites (`scripts.sweep --suite=k-ablation` or `candidate-scaling`),
with the DROL paper's readings beside them.

  python -m scripts.k_report exp/sweeps/k-ablation --out docs/results/my-k-ablation

Runs are grouped by the K (`num_candidates`) recorded in their flags.json, not by folder name.
- K ablation (k_ablation.png): success (%) against K on a log2 axis, one panel per task; mean
  over seeds, shaded +-1 std over seeds, the best mean K marked (the smallest on a tie). A
  run counts when its evaluations reach its final step; its score is the FQL protocol's
  (report.score).
- Candidate scaling (candidate_scaling.png): the candidates' RMS pairwise distance and the
  routed winner's BC loss against K, one row per task. A run's value is the mean of its last
  three logged training rows; only runs whose train.csv reaches the final step count.
Runs left out, and why, are listed in the README the command writes.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from absl import flags

from envs.d4rl_utils import is_d4rl_env
from envs.ogbench_names import parse_ogbench_name
from scripts import report  # Selects matplotlib's Agg backend.
from utils.errors import UserError, run_app

FLAGS = flags.FLAGS  # --out is defined by scripts.report; here its default is <sweep_dir>/k_report.

PAIRWISE, BC_LOSS = 'training/actor/candidate_pairwise_dist', 'training/actor/bc_loss'
SCALING_METRICS = {
    PAIRWISE: ('candidate pairwise distance', 'RMS pairwise distance\n(action units per dim)'),
    BC_LOSS: ('routed BC loss', "winner's mean squared error\n(action units²)"),
}
LAST_ROWS = 3  # Training rows averaged for a run's candidate-scaling value.
TABLE_HEADER = (
    'task', 'K', 'success (%)', 'paper success (%)', 'pairwise distance', 'paper pairwise', 'BC loss', 'paper BC loss',
)  # fmt: skip

# Readings off the DROL paper's figures (success as a fraction; the values the issue quotes).
PAPER_SUCCESS = {
    'cube-single-play-task1': {1: 0.86, 16: 0.98, 32: 0.93},
    'scene-play-task2': {1: 0.25, 32: 0.75},
}
PAPER_SCALING = {
    'cube-double-play-task3': {PAIRWISE: {1: 0.0, 64: 0.21}, BC_LOSS: {1: 0.009, 64: 0.003}},
    'scene-play-task2': {PAIRWISE: {1: 0.0, 64: 0.22}, BC_LOSS: {1: 0.0084, 64: 0.0038}},
}
PAPER_STYLE = dict(color='black', marker='X', linestyle='none', markersize=10, label='paper (read off its figure)')


def paper_name(env):
    """'cube-single-play-task1' for any spelling of an OGBench task (full names too), else `env`."""
    try:
        parsed = parse_ogbench_name(env)
    except UserError:
        parsed = None
    if parsed is None or parsed[1] is None:
        return env
    return f'{parsed[0]}-task{parsed[1]}'


def k_runs(runs):
    """Runs whose identity and K are known."""
    return [run for run in report.usable(runs) if run['num_candidates'] is not None]


def last_rows_mean(run, key):
    """Mean of the last LAST_ROWS logged values of `key`, or None when the log does not reach the final step."""
    series = report.train_series(run, key)
    if not series or max(series) < run['final_step']:
        return None
    return float(np.mean([series[step] for step in sorted(series)[-LAST_ROWS:]]))


def per_k(values):
    """{K: per-seed values} -> (Ks, means, stds, seed counts), K ascending."""
    ks = sorted(values)
    return (
        np.array(ks),
        np.array([np.mean(values[k]) for k in ks]),
        np.array([np.std(values[k]) for k in ks]),
        [len(values[k]) for k in ks],
    )


def success_by_k(runs, env):
    """{K: [score % per seed]} of the finished runs of `env`."""
    values = {}
    for run in k_runs(runs):
        if run['env'] == env and run['status'] == 'ok':
            values.setdefault(run['num_candidates'], []).append(report.score(run))
    return values


def metric_by_k(runs, env, key):
    """{K: [value per seed]} of a training metric over the runs of `env` that trained to the end."""
    values = {}
    for run in k_runs(runs):
        if run['env'] == env:
            value = last_rows_mean(run, key)
            if value is not None:
                values.setdefault(run['num_candidates'], []).append(value)
    return values


def set_k_axis(ax, ks):
    ax.set_xscale('log', base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel('K (candidates per state, log2 axis)')


def plot_paper(ax, readings, scale=1.0):
    ks = sorted(readings)
    ax.plot(ks, [readings[k] * scale for k in ks], **PAPER_STYLE)
    return ks


def plot_mean_band(ax, values, color, label):
    """Mean per K with a +-1 std band over seeds; returns the Ks and the plotted values."""
    ks, means, stds, counts = per_k(values)
    ax.plot(ks, means, color=color, marker='o', linewidth=1.8, label=label, zorder=3)
    if max(counts) > 1:
        ax.fill_between(ks, means - stds, means + stds, color=color, alpha=0.2, linewidth=0)
    return ks, means, stds, counts


def grid(count, width=4.6, height=4.0):
    columns = min(count, 5)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows + 0.8), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes.flat


def k_ablation_figure(runs):
    """Success (D4RL: normalised return) against K, one panel per task with finished evaluations, or None."""
    envs = sorted({run['env'] for run in k_runs(runs) if success_by_k(runs, run['env'])})
    if not envs:
        return None
    fig, axes = grid(len(envs))
    for ax, env in zip(axes, envs, strict=False):
        ks, means, _, counts = plot_mean_band(ax, success_by_k(runs, env), 'tab:blue', 'this sweep (mean over seeds)')
        best = int(np.argmax(means))
        best_style = dict(marker='*', color='tab:red', markersize=16, linestyle='none', zorder=4)
        ax.plot(ks[best], means[best], label=f'best K = {ks[best]}', **best_style)
        paper = PAPER_SUCCESS.get(paper_name(env))
        shown = plot_paper(ax, paper, scale=100.0) if paper else []
        set_k_axis(ax, sorted(set(ks) | set(shown)))
        if is_d4rl_env(env):
            ax.set_ylabel('normalised return (0-100 scale)')
        else:
            ax.set_ylim(-3, 103)
            ax.set_ylabel('success rate (%)')
        seeds = f'n={min(counts)}' if min(counts) == max(counts) else f'n={min(counts)}-{max(counts)}'
        ax.set_title(f'{env}\n(seeds per K: {seeds})', fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc='best')
    fig.suptitle('DROL K ablation: score against K\n(mean over seeds; shaded: ±1 std over seeds)', fontsize=11)
    fig.tight_layout()
    return fig


def candidate_scaling_figure(runs):
    """Pairwise distance and routed BC loss against K, one row per task that logged them, or None."""
    envs = sorted(
        {run['env'] for run in k_runs(runs) if any(metric_by_k(runs, run['env'], k) for k in SCALING_METRICS)}
    )
    if not envs:
        return None
    fig, axes = plt.subplots(len(envs), 2, figsize=(10, 3.8 * len(envs) + 0.6), squeeze=False)
    for row, env in zip(axes, envs, strict=True):
        for ax, (key, (title, ylabel)) in zip(row, SCALING_METRICS.items(), strict=True):
            values = metric_by_k(runs, env, key)
            ks = []
            if values:
                seeds = max(len(v) for v in values.values())
                ks = plot_mean_band(ax, values, 'tab:green', f'this sweep (up to {seeds} seeds per K)')[0]
            paper = PAPER_SCALING.get(paper_name(env), {}).get(key)
            shown = plot_paper(ax, paper) if paper else []
            set_k_axis(ax, sorted(set(ks) | set(shown)))
            ax.set_ylim(bottom=0)
            ax.set_ylabel(ylabel)
            ax.set_title(f'{env}: {title}', fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(
        f'DROL candidate scaling (mean of the last {LAST_ROWS} training logs; mean over seeds, shaded: ±1 std)'
    )
    fig.tight_layout()
    return fig


def cell(values, k, digits, scale=1.0):
    if k not in values:
        return '-'
    mean, std = np.mean(values[k]) * scale, np.std(values[k]) * scale
    return f'{mean:.{digits}f} ± {std:.{digits}f} (n={len(values[k])})'


def paper_cell(readings, k, digits, scale=1.0):
    return f'{readings[k] * scale:.{digits}f}' if readings and k in readings else '-'


def k_table(runs):
    """One row per task and K: success and the two routing diagnostics, with the paper's readings;
    columns with no value in any row are left out."""
    rows = []
    for env in sorted({run['env'] for run in k_runs(runs)}):
        success = success_by_k(runs, env)
        pairwise, bc_loss = metric_by_k(runs, env, PAIRWISE), metric_by_k(runs, env, BC_LOSS)
        paper_success = PAPER_SUCCESS.get(paper_name(env)) or {}
        paper_scaling = PAPER_SCALING.get(paper_name(env), {})
        ks = {run['num_candidates'] for run in k_runs(runs) if run['env'] == env} | set(paper_success)
        ks |= {k for readings in paper_scaling.values() for k in readings}
        for k in sorted(ks):
            rows.append(
                [
                    env,
                    str(k),
                    cell(success, k, 1),
                    paper_cell(paper_success, k, 0, 100.0),
                    cell(pairwise, k, 3),
                    paper_cell(paper_scaling.get(PAIRWISE), k, 2),
                    cell(bc_loss, k, 4),
                    paper_cell(paper_scaling.get(BC_LOSS), k, 4),
                ]
            )
    keep = [i for i in range(len(TABLE_HEADER)) if i < 2 or any(row[i] != '-' for row in rows)]
    lines = ['| ' + ' | '.join(TABLE_HEADER[i] for i in keep) + ' |', '|' + ' --- |' * len(keep)]
    return '\n'.join(lines + ['| ' + ' | '.join(row[i] for i in keep) + ' |' for row in rows])


def left_out(runs):
    """Lines naming the runs that no figure uses, and why."""
    lines = []
    for run in runs:
        if run['env'] is None or run['num_candidates'] is None:
            lines.append(f'- `{run["dir"]}`: {run["status"] if run["env"] is None else "no num_candidates (K)"}')
        elif run['status'] != 'ok' and last_rows_mean(run, PAIRWISE) is None:
            lines.append(f'- `{run["dir"]}`: {run["status"]}; train.csv does not reach the final step')
    return lines


def write_k_report(sweep_dir, out_dir):
    runs = report.find_runs(sweep_dir)
    if not k_runs(runs):
        raise UserError(f'No run under {sweep_dir} records num_candidates (K); is it a DROL K sweep?')
    os.makedirs(out_dir, exist_ok=True)
    sections = [
        '# DROL against K',
        '',
        f'Sweep: `{sweep_dir}`. Success: FQL protocol (OGBench: mean success of the last three evaluations, '
        f'D4RL: last normalised return). Routing diagnostics: mean of the last {LAST_ROWS} training logs. '
        "Mean ± std over seeds; paper = readings off the DROL paper's figures.",
        '',
        k_table(runs),
        '',
    ]
    figures = {'k_ablation.png': k_ablation_figure(runs), 'candidate_scaling.png': candidate_scaling_figure(runs)}
    for name, figure in figures.items():
        if figure is not None:
            sections += [f'![{name[:-4]}]({os.path.basename(report.save(figure, out_dir, name))})', '']
    sections += ['## Settings', '', report.settings_table(runs), '']
    problems = left_out(runs)
    if problems:
        sections += ['Runs left out:', '', *problems, '']
    path = os.path.join(out_dir, 'README.md')
    with open(path, 'w') as f:
        f.write('\n'.join(sections))
    return path


def main(argv):
    if len(argv) != 2:
        raise UserError('usage: python -m scripts.k_report SWEEP_DIR [--out DIR]')
    if not os.path.isdir(argv[1]):
        raise UserError(f'{argv[1]} is not a folder.')
    print(f'wrote {write_k_report(argv[1], FLAGS.out or os.path.join(argv[1], "k_report"))}')


if __name__ == '__main__':
    run_app(main)
