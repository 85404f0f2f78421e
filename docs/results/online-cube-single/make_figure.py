"""Draws this folder's learning curves from the runs' logs: evaluation success across the
offline/online boundary, and the success of the online (exploration) episodes.

.venv/bin/python docs/results/online-cube-single/make_figure.py exp/online-cube-single/Debug
"""

import csv
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

AGENTS = {'drol': 'DROL', 'fql': 'FQL'}


def read(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def column(rows, key):
    points = [(int(float(row['step'])), 100 * float(row[key])) for row in rows if row.get(key, '') != '']
    return [step for step, _ in points], [value for _, value in points]


def main(runs_dir, out_path):
    figure, (evaluation, online) = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for agent, label in AGENTS.items():
        run_dir = os.path.join(runs_dir, f'{agent}_cube-single-play_sd0')
        eval_rows, train_rows = (read(os.path.join(run_dir, name)) for name in ('eval.csv', 'train.csv'))
        # The last offline row: main.py logs the step where the online phase begins.
        offline_steps = max(int(float(row['step'])) for row in train_rows if row.get('online/episodes', '') == '')
        evaluation.plot(*column(eval_rows, 'evaluation/success'), marker='o', label=label)
        online.plot(*column(train_rows, 'online/episode_success'), marker='.', label=label)
    for axes, title in (
        (evaluation, 'Evaluation (20 episodes, temperature 0)'),
        (online, 'Online episodes (temperature 1; mean per 500-step log row)'),
    ):
        axes.axvline(offline_steps, color='gray', linestyle='--', label='offline -> online')
        axes.set_title(title)
        axes.set_xlabel('update step')
        axes.set_ylabel('success rate (%)')
        axes.set_ylim(-5, 105)
        axes.grid(alpha=0.3)
        axes.legend(loc='upper left')
    figure.suptitle('cube-single-play (generated data, 200 episodes): offline-to-online fine-tuning on a 2-core CPU')
    figure.tight_layout()
    figure.savefig(out_path, dpi=120)


if __name__ == '__main__':
    main(sys.argv[1], os.path.join(os.path.dirname(os.path.abspath(__file__)), 'curve_cube-single-play.png'))
