"""Expands a benchmark suite into exact main.py commands: prints them, runs them locally, or
writes a Slurm job array or one job list per host.

  .venv/bin/python -m scripts.sweep --suite=ogbench-default --agents=drol,fql --seeds=0-7 --print
  .venv/bin/python -m scripts.sweep --suite=ogbench-default --seeds=0-2 --run --parallel=2 -- --offline_steps=100000
  .venv/bin/python -m scripts.sweep --suite=ogbench-all --seeds=0-7 --format=groups --print
  .venv/bin/python -m scripts.sweep --suite=ogbench-all --seeds=0-7 --format=slurm --slurm_time=24:00:00
  .venv/bin/python -m scripts.sweep --suite=ogbench-all --seeds=0-7 --format=hosts --num_hosts=4
  .venv/bin/python -m scripts.sweep --suite=k-ablation --seeds=0-7 --print

Each command names the paper settings explicitly (the same values `--preset=paper` would
apply), so a printed line is complete on its own for a cluster scheduler's job array. Runs
live in <sweep_dir>/runs/<agent>_<env>_sd<seed>/; a run whose final evaluation is already
logged is skipped, and an unfinished one resumes from its checkpoint.

`--format` says what one command is. `commands` (the default): one run. `groups`: one process
for all the runs that can share it (same agent, K and settings): the tasks of an OGBench family
become `--env_name=<family> --tasks=1-5` and contiguous seeds `--seed=S --num_seeds=N`, writing
the same run directories as the single runs would; D4RL and default-task environments group
seeds only. A group is finished when all its runs are, and a partly finished one reruns whole
(main.py resumes its finished runs at once). `commands` and `groups` take one of `--print` and
`--run` (one local process per command, `--parallel` at a time). `slurm` takes neither: it
writes the unfinished groups, one a line, to <sweep_dir>/jobs.txt and an array job running one
line per task on one GPU to <sweep_dir>/sweep.sbatch (`--slurm_time`, `--slurm_partition` add
those header lines), and prints the `sbatch` command that submits it. `hosts` takes neither as well:
it splits the unfinished groups over `--num_hosts` lists in <sweep_dir>/hosts/ with a runner for
one list and a launcher for every worker of a TPU VM slice (scripts/host_jobs.py).

`--run` prints a line as each command starts and ends, with its time. With `--parallel=N` > 1 each
child may take 0.9 / N of a GPU's memory (XLA_PYTHON_CLIENT_MEM_FRACTION, unless exported), since
JAX's default of 75% per process leaves no room for a second one.

The K suites (`k-ablation`, `candidate-scaling`) repeat every run once per K (DROL's
`num_candidates`), in <sweep_dir>/runs/K<k>/<agent>_<env>_sd<seed>/, for `scripts.k_report`.
"""

import csv
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from time import monotonic
from typing import NamedTuple

from absl import flags

from agents import AGENTS
from envs.d4rl_utils import ADROIT_ENV_NAMES, ANTMAZE_ENV_NAMES, is_d4rl_env
from envs.ogbench_names import PAPER_FAMILIES, is_visual, parse_ogbench_name
from scripts.host_jobs import write_host_lists
from utils.errors import UserError, run_app
from utils.presets import SHORT_BUDGET_STEPS
from utils.progress import duration
from utils.ranges import contiguous_runs, parse_ints
from utils.run_dir import run_dir_for

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
    # The FQL paper's pixel-based tasks: each manipulation family's default task, from 64 x 64 x 3 images.
    'ogbench-visual': [
        f'visual-{family}' for family in PAPER_FAMILIES if family.startswith(('cube', 'scene', 'puzzle'))
    ],
}
# Suites that repeat each run for every K (num_candidates) of the paper's figure.
K_SUITES = {'k-ablation': (1, 2, 4, 8, 16, 32), 'candidate-scaling': (1, 2, 4, 8, 16, 32, 64)}
# The FQL codebase's pixel-based runs: its encoder, three stacked frames, random crop with probability 0.5.
VISUAL_FLAGS = ('--agent.encoder=impala_small', '--frame_stack=3', '--p_aug=0.5')
# main.py flags a group command sets itself: the same flag after `--` would make its run directories others.
GROUP_FLAGS = ('seed', 'num_seeds', 'tasks')
# JAX's share of each GPU's memory per process (default 0.75): --run --parallel=N gives each child 0.9 / N.
MEMORY_VARIABLE = 'XLA_PYTHON_CLIENT_MEM_FRACTION'
# Slurm accepts minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM and D-HH:MM:SS.
SLURM_TIME = re.compile(r'(\d+-)?\d+(:\d+){0,2}')
SLURM_PARTITION = re.compile(r'[\w.-]+(,[\w.-]+)*')

FLAGS = flags.FLAGS
flags.DEFINE_enum('suite', 'ogbench-default', list(SUITES), 'Which environments.')
flags.DEFINE_string('agents', None, 'Comma-separated agents (default: drol,fql; drol in the K suites).')
flags.DEFINE_string('envs', None, 'Comma-separated subset of the suite (default: all of it).')
flags.DEFINE_string('ks', None, 'K suites only: comma-separated subset of their K values (default: all).')
flags.DEFINE_string('seeds', '0-7', "Seeds: '0-7', '0,3,5' or '2'.")
flags.DEFINE_string('sweep_dir', None, 'Folder of the sweep (default exp/sweeps/<suite>).')
flags.DEFINE_string('preset', 'paper', "Preset written into the commands: 'paper' or 'drol_star'.")
flags.DEFINE_enum(
    'format',
    'commands',
    ['commands', 'groups', 'slurm', 'hosts'],
    'One command per run (commands), per process group (groups), a Slurm array script over the groups (slurm), '
    'or one list of groups per host with a TPU VM launcher (hosts).',
)
flags.DEFINE_bool('print', False, 'Print one command per line (--format=commands or groups).')
flags.DEFINE_bool('run', False, 'Run the commands here (--format=commands or groups).')
flags.DEFINE_integer('parallel', 1, 'Commands run at once with --run.')
flags.DEFINE_string('slurm_time', None, 'With --format=slurm: #SBATCH --time, e.g. 24:00:00 (default: none).')
flags.DEFINE_string('slurm_partition', None, 'With --format=slurm: #SBATCH --partition (default: none).')
flags.DEFINE_integer('num_hosts', None, 'With --format=hosts: how many job lists (TPU VM hosts, or GPUs).')


class Job(NamedTuple):
    """One main.py process: its command, the run directories it writes and the file its output goes to."""

    command: list
    run_dirs: list
    log: str


def check_agents(suite, agents):
    for agent in agents:
        if agent not in AGENTS:
            raise UserError(f'Unknown agent {agent!r} in --agents; use any of {", ".join(AGENTS)}.')
        if suite in K_SUITES and 'num_candidates' not in AGENTS[agent].default_config():
            raise UserError(f'Suite {suite} varies num_candidates (K), which agent {agent!r} does not have.')


def configurations(suite, agents, preset='paper', envs=None, ks=None):
    """(env_name, agent, run group, agent settings) of every run but its seed, in the suite's order
    (`envs` and `ks` narrow the suite)."""
    if suite not in SUITES:
        raise UserError(f'Unknown suite {suite!r}; choose one of {", ".join(SUITES)}.')
    unknown = sorted(set(envs or ()) - set(SUITES[suite]))
    if unknown:
        raise UserError(f'{", ".join(unknown)} not in suite {suite}: {", ".join(SUITES[suite])}.')
    repeated = sorted({env for env in envs or () if envs.count(env) > 1})
    if repeated:
        raise UserError(f'--envs names {", ".join(repeated)} more than once.')
    check_agents(suite, agents)
    if ks is not None and suite not in K_SUITES:
        raise UserError(f'--ks applies to the K suites ({", ".join(K_SUITES)}), not to {suite}.')
    if ks is not None and not set(ks) <= set(K_SUITES[suite]):
        raise UserError(f'--ks: suite {suite} has K = {", ".join(map(str, K_SUITES[suite]))}.')
    # (run group, K or None): one group per K in the K suites, where K replaces any preset's K.
    groups = [(f'runs/K{k}', k) for k in ks or K_SUITES.get(suite, ())] or [('runs', None)]
    configs = []
    for env_name in envs or SUITES[suite]:
        lookup = env_name if is_d4rl_env(env_name) else env_name.split('-task')[0]
        for agent in agents:
            settings = AGENTS[agent].preset_overrides(preset, lookup)
            for group, k in groups:
                configs.append((env_name, agent, group, settings if k is None else {**settings, 'num_candidates': k}))
    return configs


def main_command(agent, env_name, where, sweep_dir, group, preset, settings, extra):
    """The main.py command line; `where` holds its task and seed flags."""
    command = [VENV_PYTHON, 'main.py', f'--agent={agent}', f'--env_name={env_name}', *where]
    command += [f'--save_dir={sweep_dir}', f'--run_group={group}', f'--preset={preset}']
    if is_d4rl_env(env_name) or is_visual(env_name):
        command.append(f'--offline_steps={SHORT_BUDGET_STEPS}')  # What the preset gives, written out.
    if is_visual(env_name):
        command += VISUAL_FLAGS
    command += [f'--agent.{key}={value}' for key, value in sorted(settings.items())]
    return command + list(extra)


def expand(suite, agents, seeds, sweep_dir, preset='paper', extra=(), envs=None, ks=None):
    """One (run_dir, command list) per environment, agent, K (in the K suites) and seed (`envs`
    and `ks` narrow the suite)."""
    return [
        (
            run_dir_for(sweep_dir, group, agent, env_name, seed),
            main_command(agent, env_name, [f'--seed={seed}'], sweep_dir, group, preset, settings, extra),
        )
        for env_name, agent, group, settings in configurations(suite, agents, preset, envs, ks)
        for seed in seeds
    ]


def ints_text(numbers):
    """The shortest --tasks/--seeds text of `numbers`: [1, 2, 3, 5] -> '1-3,5'."""
    return ','.join(str(a) if n == 1 else f'{a}-{a + n - 1}' for a, n in contiguous_runs(numbers))


def expand_groups(suite, agents, seeds, sweep_dir, preset='paper', extra=(), envs=None, ks=None):
    """One Job per process group: the runs of `expand` that differ only in the task of one OGBench
    family and in contiguous seeds share a process (`--tasks`, `--seed --num_seeds`)."""
    bad = [arg for arg in extra if arg.startswith('-') and arg.lstrip('-').split('=')[0] in GROUP_FLAGS]
    if bad:
        raise UserError(f'Groups set --seed, --num_seeds and --tasks from --seeds and the suite; drop {bad[0]}.')
    # (environment or family, agent, run group, settings as printed) -> (settings, tasks); [None]: no task.
    families = {}
    for env_name, agent, group, settings in configurations(suite, agents, preset, envs, ks):
        family, task = parse_ogbench_name(env_name) or (env_name, None)
        key = (env_name if task is None else family, agent, group, repr(sorted(settings.items())))
        families.setdefault(key, (settings, []))[1].append(task)
    jobs = []
    for (name, agent, group, _), (settings, tasks) in families.items():
        env_names = [name] if tasks == [None] else [f'{name}-task{task}' for task in sorted(tasks)]
        several = len(env_names) > 1  # Then the family names them all, with --tasks.
        env_name, label = (name, f'{name}-tasks{ints_text(tasks)}') if several else (env_names[0], env_names[0])
        task_flags = [f'--tasks={ints_text(tasks)}'] if several else []
        for first, count in contiguous_runs(seeds):
            block = range(first, first + count)
            where = [*task_flags, f'--seed={first}'] + ([f'--num_seeds={count}'] if count > 1 else [])
            run_dirs = [run_dir_for(sweep_dir, group, agent, env, seed) for env in env_names for seed in block]
            log = os.path.join(
                sweep_dir, 'logs', os.path.relpath(group, 'runs'), f'{agent}_{label}_sd{ints_text(block)}.log'
            )
            command = main_command(agent, env_name, where, sweep_dir, group, preset, settings, extra)
            jobs.append(Job(command, run_dirs, os.path.normpath(log)))
    return jobs


def per_run(runs):
    """`expand`'s runs as Jobs of one run each, logging to stdout.log in their run directory."""
    return [Job(command, [run_dir], os.path.join(run_dir, 'stdout.log')) for run_dir, command in runs]


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


def job_finished(job):
    """A process group is finished when every run it writes is: one unfinished run reruns it all."""
    return all(is_finished(run_dir) for run_dir in job.run_dirs)


def child_environment(parallel):
    """The environment of --run's processes. JAX takes 75% of a GPU's memory per process, so a second
    one on the same GPU would run out: with `parallel` > 1 each may take 0.9 / parallel of it
    (XLA_PYTHON_CLIENT_MEM_FRACTION; ignored on CPUs and TPUs). A fraction the user exported wins."""
    env = dict(os.environ)
    if parallel > 1:
        env.setdefault(MEMORY_VARIABLE, f'{0.9 / parallel:.2f}')
    return env


def run_all(jobs, parallel, noun):
    """Runs the unfinished jobs here, `parallel` at a time, with a line when each starts and ends;
    `noun` names them ('runs' or 'groups')."""
    todo = [job for job in jobs if not job_finished(job)]
    env = child_environment(parallel)
    memory = f" (each may take {env[MEMORY_VARIABLE]} of a GPU's memory)" if parallel > 1 else ''
    finished = f'{len(jobs) - len(todo)} of {len(jobs)} {noun} already finished'
    print(f'{finished}; running {len(todo)}, {parallel} at a time{memory}.')
    lock = threading.Lock()

    def say(line):
        with lock:  # One whole line per event, whichever thread ends first.
            print(line, flush=True)

    def launch(number, job):
        name = f'{number}/{len(todo)}'
        say(f'[start {name}] {shlex.join(job.command)}')
        started = monotonic()
        os.makedirs(os.path.dirname(job.log), exist_ok=True)
        with open(job.log, 'a') as log:
            command = [sys.executable, *job.command[1:]]
            code = subprocess.call(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        status = 'ok' if code == 0 else f'exit {code}'
        failed = '' if code == 0 else f' (output in {job.log})'
        say(f'[{status}] {name} after {duration(monotonic() - started)}: {shlex.join(job.command)}{failed}')
        return code

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        codes = list(pool.map(launch, range(1, len(todo) + 1), todo))
    failed = sum(code != 0 for code in codes)
    if failed:
        raise UserError(f'{failed} of {len(todo)} {noun} failed; their output files are named above.')


def slurm_script(jobs_file, sweep_dir, count, suite, time=None, partition=None):
    """An sbatch array script of `count` tasks: task i runs line i + 1 of `jobs_file` from the
    repository root, on one GPU, its output in <sweep_dir>/slurm/<job>_<task>.out."""
    optional = [f'#SBATCH --time={time}'] * bool(time) + [f'#SBATCH --partition={partition}'] * bool(partition)
    return '\n'.join(
        [
            '#!/bin/bash',
            f'#SBATCH --job-name=sweep-{suite}',
            f'#SBATCH --array=0-{count - 1}',
            '#SBATCH --gres=gpu:1',
            f'#SBATCH --output={os.path.join(os.path.abspath(sweep_dir), "slurm", "%A_%a.out")}',
            *optional,
            f'# Written by scripts.sweep: array task i runs line i + 1 of {os.path.basename(jobs_file)}.',
            'set -euo pipefail',
            f'cd {shlex.quote(ROOT)}',
            f'command=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(os.path.abspath(jobs_file))})',
            '[ -n "$command" ] || { echo "no line $((SLURM_ARRAY_TASK_ID + 1)) in the jobs file" >&2; exit 1; }',
            'echo "$command"',
            'eval "$command"',
            '',
        ]
    )


def write_slurm(jobs, sweep_dir, suite, time=None, partition=None):
    """Writes `jobs`, one command a line, to <sweep_dir>/jobs.txt and the array script that runs
    them to <sweep_dir>/sweep.sbatch; returns both paths."""
    jobs_file, script = os.path.join(sweep_dir, 'jobs.txt'), os.path.join(sweep_dir, 'sweep.sbatch')
    try:
        os.makedirs(os.path.join(sweep_dir, 'slurm'), exist_ok=True)  # Slurm does not create the output folder.
        with open(jobs_file, 'w') as f:
            f.write(''.join(shlex.join(job.command) + '\n' for job in jobs))
        with open(script, 'w') as f:
            f.write(slurm_script(jobs_file, sweep_dir, len(jobs), suite, time, partition))
    except OSError as error:
        raise UserError(
            f'Cannot write the Slurm files to {sweep_dir}: {error.strerror or error}. Choose another --sweep_dir.'
        ) from error
    return jobs_file, script


def check_output_flags():
    """Each combination of --format, --print, --run and the Slurm flags means one thing, or is refused."""
    if FLAGS.format == 'slurm' and (FLAGS.print or FLAGS.run):
        raise UserError('--format=slurm writes a Slurm array job for sbatch; drop --print and --run.')
    if FLAGS.format == 'hosts' and (FLAGS.print or FLAGS.run):
        raise UserError('--format=hosts writes one job list per host; drop --print and --run.')
    if FLAGS.format not in ('slurm', 'hosts') and FLAGS.print == FLAGS.run:
        raise UserError('Give exactly one of --print and --run (or --format=slurm or hosts to write job files).')
    if FLAGS.format == 'hosts' and (FLAGS.num_hosts is None or FLAGS.num_hosts < 1):
        raise UserError(f'--format=hosts needs --num_hosts=N, N at least 1 (got {FLAGS.num_hosts}).')
    if FLAGS.num_hosts is not None and FLAGS.format != 'hosts':
        raise UserError('--num_hosts applies to --format=hosts only.')
    for name, pattern, example in (('slurm_time', SLURM_TIME, '24:00:00'), ('slurm_partition', SLURM_PARTITION, 'gpu')):
        value = FLAGS[name].value
        if value is not None and FLAGS.format != 'slurm':
            raise UserError(f'--{name} applies to --format=slurm only.')
        if value is not None and not pattern.fullmatch(value):
            raise UserError(f'--{name}={value!r} is not a Slurm value; write it like --{name}={example}.')
    if FLAGS.parallel < 1:
        raise UserError(f'--parallel must be at least 1 (got {FLAGS.parallel}).')


def submit(jobs, sweep_dir):
    """--format=slurm: writes the unfinished groups and their array job, and says how to submit it."""
    todo = [job for job in jobs if not job_finished(job)]
    if not todo:
        print(f'All {len(jobs)} groups are finished; nothing to submit.')
        return
    jobs_file, script = write_slurm(todo, sweep_dir, FLAGS.suite, FLAGS.slurm_time, FLAGS.slurm_partition)
    print(f'{len(jobs) - len(todo)} of {len(jobs)} groups already finished; the other {len(todo)} are in {jobs_file},')
    print(f'one a line, run by the array job {script}. Submit it from any folder with:')
    print(f'sbatch {shlex.quote(os.path.abspath(script))}')


def write_hosts(jobs, sweep_dir, num_hosts):
    """--format=hosts: the unfinished groups in one list per host, and how to start them."""
    todo = [job for job in jobs if not job_finished(job)]
    if not todo:
        print(f'All {len(jobs)} groups are finished; nothing to run.')
        return
    folder = os.path.join(sweep_dir, 'hosts')
    try:
        runner, launcher = write_host_lists(todo, folder, num_hosts, ROOT)
    except OSError as error:
        raise UserError(
            f'Cannot write the host lists to {folder}: {error.strerror or error}. Choose another --sweep_dir.'
        ) from error
    idle = f' ({num_hosts - len(todo)} hosts get none)' if num_hosts > len(todo) else ''
    print(f'{len(jobs) - len(todo)} of {len(jobs)} groups already finished; the other {len(todo)} are split')
    print(f'over {num_hosts} lists host0.txt .. host{num_hosts - 1}.txt in {os.path.dirname(runner)}{idle}.')
    print('Start every worker of a TPU VM slice on its list (add gcloud flags such as --zone=ZONE):')
    print(f'bash {shlex.quote(launcher)} TPU_NAME')
    print(f'or list i on GPU i of this machine: CUDA_VISIBLE_DEVICES=i bash {shlex.quote(runner)} i')


def main(argv):
    check_output_flags()
    sweep_dir = os.path.expanduser(FLAGS.sweep_dir or os.path.join('exp', 'sweeps', FLAGS.suite))
    envs = FLAGS.envs.split(',') if FLAGS.envs else None
    agents = (FLAGS.agents or ('drol' if FLAGS.suite in K_SUITES else 'drol,fql')).split(',')
    try:
        ks = [int(k) for k in FLAGS.ks.split(',')] if FLAGS.ks else None
    except ValueError as error:
        raise UserError(f'--ks={FLAGS.ks!r}: give comma-separated integers such as 1,16.') from error
    args = (FLAGS.suite, agents, parse_ints(FLAGS.seeds, '--seeds'), sweep_dir, FLAGS.preset, argv[1:], envs, ks)
    jobs = per_run(expand(*args)) if FLAGS.format == 'commands' else expand_groups(*args)
    if FLAGS.format == 'slurm':
        submit(jobs, sweep_dir)
    elif FLAGS.format == 'hosts':
        write_hosts(jobs, sweep_dir, FLAGS.num_hosts)
    elif FLAGS.print:
        print('\n'.join(shlex.join(job.command) for job in jobs))
    else:
        run_all(jobs, FLAGS.parallel, 'runs' if FLAGS.format == 'commands' else 'groups')


if __name__ == '__main__':
    run_app(main)
