"""Paper-scale batch jobs: what training many (task, seed) agents in one process, and evaluating
them together, buys on this device.

  .venv/bin/python benchmarks/batch_jobs.py                       # paper sizes: 4 x 512 MLPs, batch 256
  .venv/bin/python benchmarks/batch_jobs.py --hidden=64 --depth=2 --updates=4 --episodes=2 --results_dir=/tmp/bj

Training: aggregate updates per second (agents x updates / seconds) of `--agent_counts` DROL
agents stacked over (task, seed) as `main.py --tasks=1-5 --num_seeds=8` stacks them: one copy of
the observations and actions, one row of rewards and masks per task, one jitted call of
`--updates` fused updates for all agents. After one compiling call, each of `--repeats` repeats
times one call per agent count in turn, so load from other processes falls on all alike; the
best repeat is reported. From the fastest configuration it projects the device-hours of the
DROL paper's main table (10 families x 5 tasks x 8 seeds x 2 agents, 1M updates each), training
only.

Evaluation: wall time of `--eval_agents` agents x `--episodes` full episodes on `--env_name`,
serial (`utils.evaluation.run_episodes`, agent after agent) against batched
(`utils.batched_evaluation.BatchedEvaluator`, one policy call per environment step for all of
them) with 1 and `--workers` environment processes, each timed after one warm-up (compiling)
evaluation, as in a run, where the evaluator lives from the first evaluation to the last; it also
checks that every episode's result is the same both ways. The agents are untrained (their
actions still differ per seed).

Writes `<results_dir>/<device>.md` and prints one JSON line with every figure.
"""

import functools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from agents import AGENTS  # noqa: E402
from benchmarks.device_name import describe_device  # noqa: E402
from envs.env_utils import make_env  # noqa: E402
from utils.batched_evaluation import BatchedEvaluator  # noqa: E402
from utils.errors import UserError, run_app  # noqa: E402
from utils.evaluation import run_episodes  # noqa: E402
from utils.fused_updates import data_key, make_train_fn, shard_seeds, stack_seeds, unstack_seed  # noqa: E402
from utils.ranges import parse_ints  # noqa: E402

# The DROL paper's main OGBench table: families x tasks x seeds x agents (DROL, FQL), 1M updates each.
MAIN_TABLE_RUNS = 10 * 5 * 8 * 2
MAIN_TABLE_UPDATES = 1_000_000
NUM_TASKS = 5

FLAGS = flags.FLAGS
flags.DEFINE_string('agent_counts', '1,5,40', '(task, seed) agents trained together: 1, 5 tasks, 5 tasks x 8 seeds.')
flags.DEFINE_integer('hidden', 512, 'Width of every MLP layer (paper: 512).')
flags.DEFINE_integer('depth', 4, 'Hidden layers of every MLP (paper: 4).')
flags.DEFINE_integer('batch_size', 256, 'Training batch size (paper: 256).')
flags.DEFINE_integer('dataset_size', 100_000, 'Synthetic transitions on the device (cube-double sizes).')
flags.DEFINE_integer('updates', 10, 'Fused updates per timed call.')
flags.DEFINE_integer('repeats', 3, 'Timed calls per agent count (the best is reported).')
flags.DEFINE_string('env_name', 'cube-single-play-task1', 'Environment of the evaluation part.')
flags.DEFINE_integer('eval_agents', 8, 'Agents (seeds) evaluated together.')
flags.DEFINE_integer('episodes', 10, 'Evaluation episodes per agent.')
flags.DEFINE_integer('workers', 2, 'Environment processes of the batched evaluation (also timed with 1).')
flags.DEFINE_string('results_dir', 'benchmarks/results/batch-jobs', 'Where the markdown table is written.')

OBSERVATION_DIM, ACTION_DIM = 37, 5  # cube-double's sizes.


def config():
    config = AGENTS['drol'].default_config()
    dims = (FLAGS.hidden,) * FLAGS.depth
    config.update(dict(actor_hidden_dims=dims, value_hidden_dims=dims, batch_size=FLAGS.batch_size))
    return config


def synthetic_tasks_data(size):
    """One copy of observations and actions, a row of rewards and masks per task."""
    rng = np.random.default_rng(0)
    data = {
        'observations': rng.normal(size=(size, OBSERVATION_DIM)),
        'actions': rng.uniform(-1, 1, size=(size, ACTION_DIM)),
        'next_observations': rng.normal(size=(size, OBSERVATION_DIM)),
        'rewards': -(rng.uniform(size=(NUM_TASKS, size)) < 0.9).astype(np.float32),
        'masks': np.ones((NUM_TASKS, size)),
    }
    return jax.device_put({key: value.astype(np.float32) for key, value in data.items()})


def training_call(count, data):
    """A zero-argument call making `--updates` updates of `count` stacked agents, waited for."""
    ex = np.zeros((1, OBSERVATION_DIM), np.float32), np.zeros((1, ACTION_DIM), np.float32)
    agents = [AGENTS['drol'].create(i, *ex, config()) for i in range(count)]
    state = {
        'agents': shard_seeds(stack_seeds(agents), count),
        'keys': shard_seeds(stack_seeds([data_key(i) for i in range(count)]), count),
    }
    task_ids = shard_seeds(jnp.arange(count) % NUM_TASKS, count)
    train_fn = make_train_fn(FLAGS.batch_size, FLAGS.updates, count, tasks=True)

    def call():
        state['agents'], state['keys'], info, _ = train_fn(state['agents'], state['keys'], data, task_ids)
        jax.block_until_ready(info)

    return call


def measure_training(counts):
    """{count: aggregate updates per second}, the best of `--repeats` interleaved repeats."""
    data = synthetic_tasks_data(FLAGS.dataset_size)
    calls = {}
    for count in counts:
        calls[count] = training_call(count, data)
        calls[count]()  # Compiles.
    best = dict.fromkeys(counts, 0.0)
    for _ in range(FLAGS.repeats):
        for count, call in calls.items():
            start = time.perf_counter()
            call()
            best[count] = max(best[count], count * FLAGS.updates / (time.perf_counter() - start))
    return best


def measure_evaluation():
    """{'serial_s', 'batched_1_worker_s', 'batched_<w>_workers_s', 'episodes_equal'} for the evaluation part."""
    env = make_env(FLAGS.env_name)
    ex_observation = np.zeros((1, env.observation_space.shape[-1]), np.float32)
    ex_action = np.zeros((1, env.action_space.shape[-1]), np.float32)
    seeds = list(range(FLAGS.eval_agents))
    agents = stack_seeds([AGENTS['drol'].create(seed, ex_observation, ex_action, config()) for seed in seeds])
    figures = {}

    run_episodes(unstack_seed(agents, 0), env, 1, 0)  # Compiles the policy.
    start = time.perf_counter()
    serial = [run_episodes(unstack_seed(agents, i), env, FLAGS.episodes, seed)[0] for i, seed in enumerate(seeds)]
    figures['serial_s'] = time.perf_counter() - start

    make_envs = [functools.partial(make_env, FLAGS.env_name)] * len(seeds)
    equal = True
    for workers in sorted({1, FLAGS.workers}):
        with BatchedEvaluator(make_envs, FLAGS.episodes, workers=workers) as evaluator:
            evaluator.evaluate(agents, seeds)  # Starts the workers' environments and compiles the policy.
            start = time.perf_counter()
            batched = evaluator.evaluate(agents, seeds)
            figures[f'batched_{workers}_worker{"s" if workers > 1 else ""}_s'] = time.perf_counter() - start
        equal = equal and batched == serial
    figures['episodes_equal'] = equal
    return figures


def markdown(device, training, evaluation, projection, command):
    lines = [
        f'# Batch jobs on {device}',
        '',
        f'Command: `{command}`',
        '',
        f'DROL, {FLAGS.depth} x {FLAGS.hidden} MLPs, batch {FLAGS.batch_size}, K = {config().num_candidates}; '
        f'{FLAGS.updates} fused updates per call, best of {FLAGS.repeats}.',
        '',
        '| (task, seed) agents in one process | aggregate updates/s | per agent | gain over 1 agent |',
        '| --- | --- | --- | --- |',
    ]
    for count, rate in training.items():
        lines.append(f'| {count} | {rate:.1f} | {rate / count:.2f} | {rate / training[min(training)]:.2f}x |')
    lines += [
        '',
        f'Projected device-hours of the main table ({MAIN_TABLE_RUNS} runs x {MAIN_TABLE_UPDATES:,} updates, '
        f'training only) at the fastest setting ({projection["agents"]} agents per process): '
        f'**{projection["hours"]:,.0f} h**; one agent per process: {projection["hours_one_agent"]:,.0f} h.',
        '',
        f'Evaluation of {FLAGS.eval_agents} agents x {FLAGS.episodes} episodes on {FLAGS.env_name}:',
        '',
        '| evaluation | wall time (s) | speed-up over serial |',
        '| --- | --- | --- |',
    ]
    for key, seconds in evaluation.items():
        if key.endswith('_s'):
            label = key[: -len('_s')].replace('_', ' ')
            lines.append(f'| {label} | {seconds:.1f} | {evaluation["serial_s"] / seconds:.2f}x |')
    same = 'the same' if evaluation['episodes_equal'] else 'NOT the same'
    lines += ['', f"Every episode's result is {same} batched and serial.", '']
    return '\n'.join(lines)


def main(argv):
    if len(argv) > 1:
        raise UserError(f'Unexpected argument(s): {" ".join(argv[1:])}; every setting is a --flag (see --help).')
    for name in ('hidden', 'depth', 'batch_size', 'dataset_size', 'updates', 'repeats', 'eval_agents', 'episodes'):
        if FLAGS[name].value < 1:
            raise UserError(f'--{name} must be a positive integer (got {FLAGS[name].value}).')
    if FLAGS.workers < 1:
        raise UserError(f'--workers must be at least 1 (got {FLAGS.workers}).')
    counts = parse_ints(FLAGS.agent_counts, '--agent_counts')
    if min(counts) < 1:
        raise UserError(f'--agent_counts={FLAGS.agent_counts!r}: every count must be at least 1.')
    device = describe_device()
    print(f'Timing training of {", ".join(map(str, counts))} agents on {device} ...', flush=True)
    training = measure_training(counts)
    fastest = max(training, key=training.get)
    projection = {
        'agents': fastest,
        'hours': MAIN_TABLE_RUNS * MAIN_TABLE_UPDATES / training[fastest] / 3600,
        'hours_one_agent': MAIN_TABLE_RUNS * MAIN_TABLE_UPDATES / (training[min(training)] / min(training)) / 3600,
    }
    print(f'Timing evaluation of {FLAGS.eval_agents} agents x {FLAGS.episodes} episodes ...', flush=True)
    evaluation = measure_evaluation()
    command = ' '.join(['.venv/bin/python', 'benchmarks/batch_jobs.py', *sys.argv[1:]])
    os.makedirs(FLAGS.results_dir, exist_ok=True)
    first = jax.devices()[0]
    name = f'{first.platform}-{first.device_kind}'.lower().replace(' ', '-')
    path = os.path.join(FLAGS.results_dir, f'{name}.md')
    with open(path, 'w') as f:
        f.write(markdown(device, training, evaluation, projection, command))
    figures = {'device': device, 'updates_per_s': training, 'projection': projection, 'evaluation': evaluation}
    print(json.dumps(figures))
    print(f'wrote {path}')


if __name__ == '__main__':
    run_app(main)
