"""Expands a benchmark suite into exact main.py commands, prints them or runs them locally.

  .venv/bin/python -m scripts.sweep --suite=ogbench-default --agents=drol,fql --seeds=0-7 --print
  .venv/bin/python -m scripts.sweep --suite=ogbench-default --seeds=0-2 --run --parallel=2 -- --offline_steps=100000
  .venv/bin/python -m scripts.sweep --suite=k-ablation --seeds=0-7 --print

Each command names the paper settings explicitly (the same values `--preset=paper` would
apply), so a printed line is complete on its own for a cluster scheduler's job array. Runs
live in <sweep_dir>/runs/<agent>_<env>_sd<seed>/; a run whose final evaluation is already
logged is skipped, and an unfinished one resumes from its checkpoint.

The K suites (`k-ablation`, `candidate-scaling`) repeat every run once per K (DROL's
`num_candidates`), in <sweep_dir>/runs/K<k>/<agent>_<env>_sd<seed>/, for `scripts.k_report`.
"""

import csv
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from absl import flags

from agents import AGENTS
from envs.d4rl_utils import ADROIT_ENV_NAMES, ANTMAZE_ENV_NAMES, is_d4rl_env
from envs.ogbench_names import PAPER_FAMILIES
from utils.errors import UserError, run_app

# Printed commands run from the repository root with the README's environment, as copied.
VENV_PYTHON = '.venv/bin/python'

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The DROL paper's K ablation: one OGBench task per family, the six D4RL AntMaze and the four
# Adroit expert tasks.
K_ABLATION_TASKS = [
    'antmaze-giant-navigate-task3',
    'antmaze-large-navigate-task1',
    'antsoccer-arena-navigate-task4',
    'cube-double-play-task3',
    'cube-single-play-task1',
    'humanoidmaze-large-navigate-task1',
    'humanoidmaze-medium-navigate-task1',
    'puzzle-3x3-play-task2',
    'puzzle-4x4-play-task1',
    'scene-play-task2',
    *ANTMAZE_ENV_NAMES,
    *(name for name in ADROIT_ENV_NAMES if '-expert-' in name),
]
SUITES = {
    'ogbench-default': [f'{family}' for family in PAPER_FAMILIES],
    'ogbench-all': [f'{family}-task{task}' for family in PAPER_FAMILIES for task in range(1, 6)],
    'd4rl-antmaze': list(ANTMAZE_ENV_NAMES),
    'd4rl-adroit': list(ADROIT_ENV_NAMES),
    'k-ablation': K_ABLATION_TASKS,
    'candidate-scaling': ['antmaze-giant-navigate-task3', 'cube-double-play-task3', 'scene-play-task2'],
}
# Suites that repeat each run for every K (num_candidates) of the paper's figure.
K_SUITES = {'k-ablation': (1, 2, 4, 8, 16, 32), 'candidate-scaling': (1, 2, 4, 8, 16, 32, 64)}
D4RL_STEPS = 500_000  # The spec's D4RL budget; OGBench uses main.py's default of 1M.

FLAGS = flags.FLAGS
flags.DEFINE_enum('suite', 'ogbench-default', list(SUITES), 'Which environments.')
flags.DEFINE_string('agents', None, 'Comma-separated agents (default: drol,fql; drol in the K suites).')
flags.DEFINE_string('envs', None, 'Comma-separated subset of the suite (default: all of it).')
flags.DEFINE_string('ks', None, 'K suites only: comma-separated subset of their K values (default: all).')
flags.DEFINE_string('seeds', '0-7', "Seeds: '0-7', '0,3,5' or '2'.")
flags.DEFINE_string('sweep_dir', None, 'Folder of the sweep (default exp/sweeps/<suite>).')
flags.DEFINE_string('preset', 'paper', "Preset written into the commands: 'paper' or 'drol_star'.")
flags.DEFINE_bool('print', False, 'Print one command per line.')
flags.DEFINE_bool('run', False, 'Run the commands here.')
flags.DEFINE_integer('parallel', 1, 'Commands run at once with --run.')


def parse_seeds(text):
    """Seeds from '0-7', '0,3,5' or '2': every range ascending, no seed twice, none negative."""
    seeds = []
    try:
        for part in text.split(','):
            if '-' in part:
                low, high = (int(x) for x in part.split('-'))
                if low > high:
                    raise UserError(f'--seeds={text!r}: the range {part} is empty; write it as {high}-{low}.')
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
    except ValueError as error:
        raise UserError(f'--seeds={text!r}: use a range like 0-7 or a list like 0,3,5.') from error
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        raise UserError(f'--seeds={text!r} names seed {", ".join(map(str, repeated))} more than once.')
    return seeds


def check_agents(suite, agents):
    for agent in agents:
        if agent not in AGENTS:
            raise UserError(f'Unknown agent {agent!r} in --agents; use any of {", ".join(AGENTS)}.')
        if suite in K_SUITES and 'num_candidates' not in AGENTS[agent].default_config():
            raise UserError(f'Suite {suite} varies num_candidates (K), which agent {agent!r} does not have.')


def expand(suite, agents, seeds, sweep_dir, preset='paper', extra=(), envs=None, ks=None):
    """One (run_dir, command list) per environment, agent, K (in the K suites) and seed (`envs`
    and `ks` narrow the suite)."""
    if suite not in SUITES:
        raise UserError(f'Unknown suite {suite!r}; choose one of {", ".join(SUITES)}.')
    unknown = sorted(set(envs or ()) - set(SUITES[suite]))
    if unknown:
        raise UserError(f'{", ".join(unknown)} not in suite {suite}: {", ".join(SUITES[suite])}.')
    check_agents(suite, agents)
    if ks is not None and suite not in K_SUITES:
        raise UserError(f'--ks applies to the K suites ({", ".join(K_SUITES)}), not to {suite}.')
    if ks is not None and not set(ks) <= set(K_SUITES[suite]):
        raise UserError(f'--ks: suite {suite} has K = {", ".join(map(str, K_SUITES[suite]))}.')
    # (run group, K or None): one group per K in the K suites, where K replaces any preset's K.
    groups = [(f'runs/K{k}', k) for k in ks or K_SUITES.get(suite, ())] or [('runs', None)]
    runs = []
    for env_name in envs or SUITES[suite]:
        d4rl = is_d4rl_env(env_name)
        lookup = env_name if d4rl else env_name.split('-task')[0]
        for agent in agents:
            settings = AGENTS[agent].preset_overrides(preset, lookup)
            for group, k in groups:
                if k is not None:
                    settings = {**settings, 'num_candidates': k}
                for seed in seeds:
                    command = [
                        VENV_PYTHON,
                        'main.py',
                        f'--agent={agent}',
                        f'--env_name={env_name}',
                        f'--seed={seed}',
                        f'--save_dir={sweep_dir}',
                        f'--run_group={group}',
                        f'--preset={preset}',
                    ]
                    if d4rl:
                        command.append(f'--offline_steps={D4RL_STEPS}')
                    command += [f'--agent.{key}={value}' for key, value in sorted(settings.items())]
                    command += list(extra)
                    runs.append((os.path.join(sweep_dir, group, f'{agent}_{env_name}_sd{seed}'), command))
    return runs


def is_finished(run_dir):
    """Whether the run's eval.csv already holds the evaluation at its final step."""
    try:
        with open(os.path.join(run_dir, 'flags.json')) as f:
            final_step = json.load(f)['offline_steps']
        with open(os.path.join(run_dir, 'eval.csv'), newline='') as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError, KeyError):
        return False
    return bool(rows) and int(float(rows[-1]['step'])) >= final_step


def run_all(runs, parallel):
    todo = [(d, c) for d, c in runs if not is_finished(d)]
    print(f'{len(runs) - len(todo)} of {len(runs)} runs already finished; running {len(todo)}, {parallel} at a time.')

    def launch(item):
        run_dir, command = item
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, 'stdout.log'), 'a') as log:
            code = subprocess.call([sys.executable, *command[1:]], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        print(f'[{"ok" if code == 0 else f"exit {code}"}] {shlex.join(command)}', flush=True)
        return code

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        codes = list(pool.map(launch, todo))
    failed = sum(code != 0 for code in codes)
    if failed:
        raise UserError(f'{failed} of {len(todo)} runs failed; see stdout.log in their run directories.')


def main(argv):
    if FLAGS.print == FLAGS.run:
        raise UserError('Give exactly one of --print and --run.')
    if FLAGS.parallel < 1:
        raise UserError(f'--parallel must be at least 1 (got {FLAGS.parallel}).')
    sweep_dir = FLAGS.sweep_dir or os.path.join('exp', 'sweeps', FLAGS.suite)
    envs = FLAGS.envs.split(',') if FLAGS.envs else None
    agents = (FLAGS.agents or ('drol' if FLAGS.suite in K_SUITES else 'drol,fql')).split(',')
    try:
        ks = [int(k) for k in FLAGS.ks.split(',')] if FLAGS.ks else None
    except ValueError as error:
        raise UserError(f'--ks={FLAGS.ks!r}: give comma-separated integers such as 1,16.') from error
    runs = expand(FLAGS.suite, agents, parse_seeds(FLAGS.seeds), sweep_dir, FLAGS.preset, argv[1:], envs, ks)
    if FLAGS.print:
        print('\n'.join(shlex.join(command) for _, command in runs))
    else:
        run_all(runs, FLAGS.parallel)


if __name__ == '__main__':
    run_app(main)
