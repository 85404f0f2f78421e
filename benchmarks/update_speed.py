"""Update throughput of DROL and FQL at the paper's sizes, measured within one process.

Modes (comma-separated `--modes`):
  update      jitted `update(batch)` on a device batch: updates/s per agent, DROL/FQL ratio.
  loop        the FQL-style loop (NumPy batch on the host, copy, one call per update) vs the
              fused device loop with N = 1, 10, 100 updates per call.
  seeds       1 seed vs `--num_seeds` vmapped seeds (aggregate updates/s).
  end_to_end  wall time of 5,000 updates plus one 10-episode evaluation on cube-single.
  eval        a 20-episode cube-single evaluation in-process vs with 2 worker processes.
Rounds alternate the agents and the median is reported, so background load hits all alike.
The last printed line is one JSON object with every figure; `--write_results` also writes
benchmarks/results/<device>.md.
"""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from agents import AGENTS  # noqa: E402
from utils.datasets import sample_batch_numpy, to_device  # noqa: E402
from utils.fused_updates import data_key, make_train_fn, stack_seeds  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string('modes', 'update', 'Comma-separated: update, loop, seeds, end_to_end.')
flags.DEFINE_string('agents', 'drol,fql', 'Agents to time.')
flags.DEFINE_integer('batch_size', 256, 'Batch size.')
flags.DEFINE_integer('hidden', 512, 'Width of the 4-layer actor and critic MLPs.')
flags.DEFINE_integer('num_candidates', 16, 'DROL K.')
flags.DEFINE_integer('observation_dim', 37, 'Observation size (cube-double: 37).')
flags.DEFINE_integer('action_dim', 5, 'Action size (cube-double: 5).')
flags.DEFINE_integer('updates', 200, 'Updates timed per round.')
flags.DEFINE_integer('rounds', 3, 'Rounds per measurement (median reported).')
flags.DEFINE_integer('num_seeds', 8, 'Seeds for the seeds mode.')
flags.DEFINE_bool('write_results', False, 'Write benchmarks/results/<device>.md.')

DATASET_SIZE = 100_000


def make_config(agent_name):
    config = AGENTS[agent_name].default_config()
    config.actor_hidden_dims = config.value_hidden_dims = (FLAGS.hidden,) * 4
    config.batch_size = FLAGS.batch_size
    if 'num_candidates' in config:
        config.num_candidates = FLAGS.num_candidates
    return config


def synthetic_dataset():
    rng = np.random.default_rng(0)
    n, o, a = DATASET_SIZE, FLAGS.observation_dim, FLAGS.action_dim
    return {
        'observations': rng.normal(size=(n, o)).astype(np.float32),
        'actions': rng.uniform(-1, 1, size=(n, a)).astype(np.float32),
        'next_observations': rng.normal(size=(n, o)).astype(np.float32),
        'rewards': rng.normal(size=n).astype(np.float32),
        'masks': np.ones(n, np.float32),
    }


def create(agent_name, dataset, seed=0):
    return AGENTS[agent_name].create(seed, dataset['observations'][:1], dataset['actions'][:1],
                                     make_config(agent_name))


def median_rate(run_once, updates_per_round):
    """Median updates/s over rounds of `run_once()` (after one warm-up call)."""
    run_once()
    rates = []
    for _ in range(FLAGS.rounds):
        start = time.perf_counter()
        run_once()
        rates.append(updates_per_round / (time.perf_counter() - start))
    return statistics.median(rates)


def host_loop_runner(agent_name, dataset):
    """FQL-style: NumPy batch on the host, copied, one jitted update per step."""
    state = {'agent': create(agent_name, dataset)}
    rng = np.random.default_rng(0)

    def run_once():
        agent = state['agent']
        for _ in range(FLAGS.updates):
            agent, _ = agent.update(sample_batch_numpy(dataset, rng, FLAGS.batch_size))
        jax.block_until_ready(agent)
        state['agent'] = agent

    return run_once


def fused_runner(agent_name, dataset, updates_per_call, num_seeds=1):
    data = to_device(dataset)
    agents = stack_seeds([create(agent_name, dataset, seed) for seed in range(num_seeds)])
    state = {'agents': agents, 'keys': stack_seeds([data_key(s) for s in range(num_seeds)])}
    train_fn = make_train_fn(FLAGS.batch_size, updates_per_call, num_seeds)
    calls = max(1, FLAGS.updates // updates_per_call)

    def run_once():
        agents, keys = state['agents'], state['keys']
        for _ in range(calls):
            agents, keys, _, _ = train_fn(agents, keys, data)
        jax.block_until_ready(agents)
        state['agents'], state['keys'] = agents, keys

    return run_once, calls * updates_per_call


def measure_update(agent_names, dataset):
    runners = {name: fused_runner(name, dataset, 1) for name in agent_names}
    return {f'{name}_updates_per_s': median_rate(*runners[name]) for name in agent_names}


def measure_loop(agent_names, dataset):
    results = {}
    for name in agent_names:
        results[f'{name}_host_loop_updates_per_s'] = median_rate(host_loop_runner(name, dataset), FLAGS.updates)
        for n in (1, 10, 100):
            results[f'{name}_fused{n}_updates_per_s'] = median_rate(*fused_runner(name, dataset, n))
    return results


def measure_seeds(agent_names, dataset):
    results = {}
    for name in agent_names:
        single = median_rate(*fused_runner(name, dataset, 10, num_seeds=1))
        many_run, many_updates = fused_runner(name, dataset, 10, num_seeds=FLAGS.num_seeds)
        many = median_rate(many_run, many_updates * FLAGS.num_seeds)
        results[f'{name}_1seed_updates_per_s'] = single
        results[f'{name}_{FLAGS.num_seeds}seeds_aggregate_updates_per_s'] = many
        results[f'{name}_{FLAGS.num_seeds}seeds_speedup'] = many / single
    return results


def measure_end_to_end(agent_names):
    """Seconds for 5,000 fused updates and one 10-episode evaluation on cube-single (tiny data)."""
    import gymnasium  # noqa: F401
    import tempfile

    from envs.env_utils import make_env
    from tests.conftest import write_ogbench_dataset
    from utils.evaluation import run_episodes

    folder = tempfile.mkdtemp()
    path = write_ogbench_dataset(os.path.join(folder, 'cube-single-play-v0.npz'), episodes=5, steps=200)
    import ogbench

    env, train, _ = ogbench.make_env_and_datasets('cube-single-play-singletask-v0', dataset_path=path,
                                                  success_timing='post')
    results = {}
    for name in agent_names:
        run_once, _ = fused_runner(name, train, 100)
        run_once()  # Compile.
        start = time.perf_counter()
        for _ in range(5000 // (max(1, FLAGS.updates // 100) * 100)):
            run_once()
        train_s = time.perf_counter() - start
        agent = create(name, train)
        run_episodes(agent, make_env('cube-single-play'), 1, 0)  # Compile the policy.
        start = time.perf_counter()
        run_episodes(agent, env, 10, 0)
        results[f'{name}_5000_updates_s'] = train_s
        results[f'{name}_10_episode_eval_s'] = time.perf_counter() - start
    return results


def measure_eval(agent_names):
    """Seconds for a 20-episode evaluation, serial vs 2 warm workers (paper-size DROL policy)."""
    from envs.env_utils import make_env
    from utils.evaluator import EvalPool
    from utils.evaluation import run_episodes

    name = agent_names[0]
    env = make_env('cube-single-play')
    observations = np.zeros((1, env.observation_space.shape[0]), np.float32)
    actions = np.zeros((1, env.action_space.shape[0]), np.float32)
    agent = AGENTS[name].create(0, observations, actions, make_config(name))
    run_episodes(agent, env, 1, 0)  # Compile.
    start = time.perf_counter()
    run_episodes(agent, env, 20, 0)
    serial = time.perf_counter() - start
    make_agent = functools.partial(AGENTS[name].create, 0, observations, actions, make_config(name))
    pool = EvalPool(2, functools.partial(make_env, 'cube-single-play', 'post'), make_agent)
    try:
        pool.run_episodes(agent, 2, 0)  # Start and compile in the workers.
        start = time.perf_counter()
        pool.run_episodes(agent, 20, 0)
        parallel = time.perf_counter() - start
    finally:
        pool.close()
    return {'eval_20_episodes_1_worker_s': serial, 'eval_20_episodes_2_workers_s': parallel,
            'eval_2_worker_speedup': serial / parallel}


def main(_):
    agent_names = FLAGS.agents.split(',')
    dataset = synthetic_dataset()
    device = jax.devices()[0]
    results = {'device': f'{device.platform}:{getattr(device, "device_kind", "")}', 'batch_size': FLAGS.batch_size,
               'hidden': FLAGS.hidden, 'num_candidates': FLAGS.num_candidates}
    measures = {'update': lambda: measure_update(agent_names, dataset),
                'loop': lambda: measure_loop(agent_names, dataset),
                'seeds': lambda: measure_seeds(agent_names, dataset),
                'end_to_end': lambda: measure_end_to_end(agent_names),
                'eval': lambda: measure_eval(agent_names)}
    for mode in FLAGS.modes.split(','):
        figures = measures[mode]()
        for key, value in figures.items():
            print(f'{key}: {value:.2f}')
        results.update(figures)
    if 'drol_updates_per_s' in results and 'fql_updates_per_s' in results:
        results['drol_over_fql'] = results['drol_updates_per_s'] / results['fql_updates_per_s']
        print(f'DROL/FQL updates-per-second ratio: {results["drol_over_fql"]:.3f}')
    if FLAGS.write_results:
        write_markdown(results)
    print(json.dumps(results))


def write_markdown(results):
    name = results['device'].replace(':', '-').replace(' ', '_').strip('-_') or 'device'
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results', f'{name}.md')
    lines = [f'# Update speed on {results["device"]}', '',
             f'Command: `python benchmarks/update_speed.py --modes={FLAGS.modes} --write_results`', '',
             '| figure | value |', '| --- | --- |']
    lines += [f'| {k} | {v:.3f} |' if isinstance(v, float) else f'| {k} | {v} |' for k, v in results.items()]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print(f'wrote {path}')


if __name__ == '__main__':
    app.run(main)
