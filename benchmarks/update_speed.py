"""Update throughput of the registered agents (`agents.AGENTS`), measured within one process.

Modes (comma-separated `--modes`):
  update      one jitted update per call, its batch sampled on the device: updates/s of each
              agent, and each agent's updates/s relative to the first agent listed.
  loop        the FQL-style loop (NumPy batch sampled on the host, copied, one call per update)
              vs the fused device loop with N = 1, 10, 100 updates per call, for each agent.
  seeds       1 seed vs `--num_seeds` vmapped seeds (aggregate updates/s), for each agent.
  end_to_end  wall time of 5,000 fused updates (on a tiny generated cube-single dataset) and
              of one 10-episode cube-single evaluation, for each agent.
  eval        a 20-episode cube-single evaluation of the first agent's policy, the serial loop
              vs batched with its environments in 2 worker processes.
`--agents` defaults to every registered agent. With `--encoder` (update and seeds modes) the agents
read synthetic uint8 `--image_size` x `--image_size` x 3 frames (episodes of 1,000 frames) through
that encoder, with `--frame_stack` and `--p_aug` as main.py takes them (the FQL paper's pixel runs:
impala_small, 64, 3, 0.5). Every `*_hidden_dims` of an agent's config gets
width `--hidden` (its depth is kept), and `--num_candidates` applies to agents whose config
has that key. In the update, loop and seeds modes each round times every runner once, in turn,
after one warm-up call each, and the median over `--rounds` is reported, so background load
hits all alike. The last printed line is one JSON object with every figure; `--write_results`
also writes <results_dir>/<device>.md (by default benchmarks/results/<device>.md).
Bad flags end with one line on stderr and exit status 2; `--help` exits 0.
"""

import functools
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from agents import AGENTS  # noqa: E402
from utils.datasets import example_observations, sample_batch_numpy, to_device  # noqa: E402
from utils.errors import UserError, closest, run_app  # noqa: E402
from utils.fused_updates import data_key, make_train_fn, stack_seeds  # noqa: E402

MODES = ('update', 'loop', 'seeds', 'end_to_end', 'eval')
POSITIVE_FLAGS = (
    'updates',
    'rounds',
    'batch_size',
    'hidden',
    'num_candidates',
    'num_seeds',
    'observation_dim',
    'action_dim',
)
DEFAULT_RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
DATASET_SIZE = 100_000
IMAGE_DATASET_SIZE = 10_000  # 123 MB of 64 x 64 x 3 frames.
IMAGE_EPISODE_LENGTH = 1000
IMAGE_MODES = ('update', 'seeds')  # The others sample on the host or run state-based environments.
END_TO_END_UPDATES = 5000

FLAGS = flags.FLAGS
flags.DEFINE_string('modes', 'update', f'Comma-separated, any of: {", ".join(MODES)} (see the module docstring).')
flags.DEFINE_string(
    'agents',
    ','.join(AGENTS),
    'Comma-separated agents to time (default: every registered agent); ratios are relative to the first.',
)
flags.DEFINE_integer('batch_size', 256, 'Batch size.')
flags.DEFINE_integer('hidden', 512, "Width of every *_hidden_dims MLP of an agent's config (depth kept).")
flags.DEFINE_integer('num_candidates', 16, 'num_candidates (DROL K) of agents whose config has that key.')
flags.DEFINE_integer('observation_dim', 37, 'Synthetic observation size (cube-double: 37).')
flags.DEFINE_integer('action_dim', 5, 'Synthetic action size (cube-double: 5).')
flags.DEFINE_integer('updates', 200, 'Updates timed per round.')
flags.DEFINE_integer('rounds', 3, 'Rounds per measurement (median reported).')
flags.DEFINE_integer('num_seeds', 8, 'Seeds for the seeds mode.')
flags.DEFINE_string('encoder', None, 'Image encoder (e.g. impala_small): time the agents on synthetic frames.')
flags.DEFINE_integer('image_size', 64, 'Height and width of the synthetic frames (with --encoder).')
flags.DEFINE_integer('frame_stack', None, 'Frames stacked per observation (with --encoder).')
flags.DEFINE_float('p_aug', None, 'Probability of a random crop per batch (with --encoder).')
flags.DEFINE_bool('write_results', False, 'Write <results_dir>/<device>.md.')
flags.DEFINE_string('results_dir', None, 'Folder for --write_results (default: benchmarks/results).')


def split_names(value):
    """The comma-separated names of a flag, stripped, empty ones and repeats dropped, in order."""
    return list(dict.fromkeys(name.strip() for name in value.split(',') if name.strip()))


def check_flags(argv):
    """(agent names, modes) from the flags, or a UserError naming the bad one."""
    if len(argv) > 1:
        raise UserError(f'Unexpected argument(s): {" ".join(argv[1:])}; every setting is a --flag (see --help).')
    for name in POSITIVE_FLAGS:
        if FLAGS[name].value < 1:
            raise UserError(f'--{name} must be a positive integer (got {FLAGS[name].value}).')
    modes = split_names(FLAGS.modes)
    if not modes:
        raise UserError(f'--modes is empty; choose from {", ".join(MODES)}.')
    for mode in modes:
        if mode not in MODES:
            raise UserError(f'Unknown mode {mode!r} in --modes; choose from {", ".join(MODES)}.{closest(mode, MODES)}')
    check_image_flags(modes)
    agent_names = split_names(FLAGS.agents)
    if not agent_names:
        raise UserError(f'--agents is empty; choose from {", ".join(AGENTS)}.')
    for name in agent_names:
        if name not in AGENTS:
            raise UserError(
                f'Unknown agent {name!r} in --agents; registered agents: {", ".join(AGENTS)}.{closest(name, AGENTS)}'
            )
        make_config(name)  # Settings the agent itself rejects are a UserError too, before any timing.
    return agent_names, modes


def check_image_flags(modes):
    """The image flags need --encoder, and images the modes that sample on the device."""
    if FLAGS.encoder is None:
        for name in ('frame_stack', 'p_aug'):
            if FLAGS[name].value is not None:
                raise UserError(f'--{name} acts on images: add --encoder (e.g. impala_small).')
        return
    other = [mode for mode in modes if mode not in IMAGE_MODES]
    if other:
        raise UserError(f'--encoder times the {" and ".join(IMAGE_MODES)} modes only (not {", ".join(other)}).')
    if FLAGS.image_size < 1 or (FLAGS.frame_stack is not None and FLAGS.frame_stack < 1):
        raise UserError('--image_size and --frame_stack must be positive.')
    if FLAGS.p_aug is not None and not 0 <= FLAGS.p_aug <= 1:
        raise UserError(f'--p_aug must lie in [0, 1] (got {FLAGS.p_aug}).')


def make_config(agent_name):
    """The agent's default config with the benchmark's sizes, set only where the config has the key."""
    config = AGENTS[agent_name].default_config()
    for key in config:
        if key.endswith('_hidden_dims'):
            config[key] = (FLAGS.hidden,) * len(config[key])
    for key in ('batch_size', 'num_candidates'):
        if key in config:
            config[key] = FLAGS[key].value
    config['encoder'] = FLAGS.encoder
    problems = AGENTS[agent_name].config_problems(config)
    if problems:
        raise UserError(f'{agent_name} rejects the benchmark settings: {" ".join(problems)}')
    return config


def synthetic_dataset():
    if FLAGS.encoder is not None:
        return synthetic_image_dataset()
    rng = np.random.default_rng(0)
    n, o, a = DATASET_SIZE, FLAGS.observation_dim, FLAGS.action_dim
    return {
        'observations': rng.normal(size=(n, o)).astype(np.float32),
        'actions': rng.uniform(-1, 1, size=(n, a)).astype(np.float32),
        'next_observations': rng.normal(size=(n, o)).astype(np.float32),
        'rewards': rng.normal(size=n).astype(np.float32),
        'masks': np.ones(n, np.float32),
    }


def synthetic_image_dataset():
    """Uniform uint8 frames in episodes of IMAGE_EPISODE_LENGTH, each next observation the next frame."""
    rng = np.random.default_rng(0)
    n, size = IMAGE_DATASET_SIZE, FLAGS.image_size
    frames = rng.integers(0, 256, (n + 1, size, size, 3), dtype=np.uint8)
    return {
        'observations': frames[:-1],
        'next_observations': frames[1:],
        'terminals': (np.arange(1, n + 1) % IMAGE_EPISODE_LENGTH == 0).astype(np.float32),
        'actions': rng.uniform(-1, 1, size=(n, FLAGS.action_dim)).astype(np.float32),
        'rewards': rng.normal(size=n).astype(np.float32),
        'masks': np.ones(n, np.float32),
    }


def create(agent_name, dataset, seed=0):
    observations = example_observations(dataset, FLAGS.frame_stack)
    return AGENTS[agent_name].create(seed, observations, dataset['actions'][:1], make_config(agent_name))


def median_rates(runners):
    """{key: median updates/s} of `runners` ({key: (run_once, updates per call)}): one warm-up
    call each, then `--rounds` rounds that each time every runner once, in turn."""
    for run_once, _ in runners.values():
        run_once()
    rates = {key: [] for key in runners}
    for _ in range(FLAGS.rounds):
        for key, (run_once, updates) in runners.items():
            start = time.perf_counter()
            run_once()
            rates[key].append(updates / (time.perf_counter() - start))
    return {key: statistics.median(values) for key, values in rates.items()}


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

    return run_once, FLAGS.updates


def fused_runner(agent_name, dataset, data, updates_per_call, num_seeds=1, total_updates=None):
    """(run_once, updates per seed per run_once): `total_updates` (default `--updates`) rounded
    down to whole calls of `updates_per_call` fused updates (at least one call); `data` is
    `dataset` on the device."""
    agents = stack_seeds([create(agent_name, dataset, seed) for seed in range(num_seeds)])
    state = {'agents': agents, 'keys': stack_seeds([data_key(s) for s in range(num_seeds)])}
    train_fn = make_train_fn(
        FLAGS.batch_size, updates_per_call, num_seeds, frame_stack=FLAGS.frame_stack, p_aug=FLAGS.p_aug
    )
    calls = max(1, (total_updates or FLAGS.updates) // updates_per_call)

    def run_once(calls=calls):
        agents, keys = state['agents'], state['keys']
        for _ in range(calls):
            agents, keys, _, _ = train_fn(agents, keys, data)
        jax.block_until_ready(agents)
        state['agents'], state['keys'] = agents, keys

    return run_once, calls * updates_per_call


def measure_update(agent_names, dataset):
    data = to_device(dataset)
    runners = {f'{name}_updates_per_s': fused_runner(name, dataset, data, 1) for name in agent_names}
    results = median_rates(runners)
    first = agent_names[0]
    for name in agent_names[1:]:
        results[f'{name}_over_{first}'] = results[f'{name}_updates_per_s'] / results[f'{first}_updates_per_s']
    return results


def measure_loop(agent_names, dataset):
    data = to_device(dataset)
    runners = {}
    for name in agent_names:
        runners[f'{name}_host_loop_updates_per_s'] = host_loop_runner(name, dataset)
        for n in (1, 10, 100):
            runners[f'{name}_fused{n}_updates_per_s'] = fused_runner(name, dataset, data, n)
    return median_rates(runners)


def measure_seeds(agent_names, dataset):
    data = to_device(dataset)
    many = FLAGS.num_seeds
    runners = {}
    for name in agent_names:
        runners[f'{name}_1seed_updates_per_s'] = fused_runner(name, dataset, data, 10, num_seeds=1)
        run_once, updates = fused_runner(name, dataset, data, 10, num_seeds=many)
        runners[f'{name}_{many}seeds_aggregate_updates_per_s'] = (run_once, updates * many)
    results = median_rates(runners)
    for name in agent_names:
        results[f'{name}_{many}seeds_speedup'] = (
            results[f'{name}_{many}seeds_aggregate_updates_per_s'] / results[f'{name}_1seed_updates_per_s']
        )
    return results


def measure_end_to_end(agent_names, dataset):
    """Seconds for 5,000 fused updates (100 per call) on a tiny generated cube-single dataset,
    and for one 10-episode evaluation of a fresh agent, per agent (`dataset` is unused)."""
    import tempfile

    from envs.env_utils import make_env_and_datasets
    from tests.helpers import write_ogbench_dataset
    from utils.evaluation import run_episodes

    with tempfile.TemporaryDirectory() as folder:
        path = write_ogbench_dataset(os.path.join(folder, 'cube-single-play-v0.npz'), episodes=5, steps=200)
        env, train, _, _ = make_env_and_datasets('cube-single-play', dataset_path=path)
    data = to_device(train)
    results = {}
    for name in agent_names:
        run_once, _ = fused_runner(name, train, data, 100, total_updates=END_TO_END_UPDATES)
        run_once(calls=1)  # Compile.
        start = time.perf_counter()
        run_once()
        results[f'{name}_{END_TO_END_UPDATES}_updates_s'] = time.perf_counter() - start
        agent = create(name, train)
        run_episodes(agent, env, 1, 0)  # Compile the policy.
        start = time.perf_counter()
        run_episodes(agent, env, 10, 0)
        results[f'{name}_10_episode_eval_s'] = time.perf_counter() - start
    return results


def measure_eval(agent_names, dataset):
    """Seconds for a 20-episode cube-single evaluation of the first agent's (untrained) policy,
    the serial loop vs the batched evaluator with its environments in 2 worker processes, each
    timed after a warm-up (compiling) evaluation (`dataset` is unused)."""
    from envs.env_utils import make_env
    from utils.batched_evaluation import BatchedEvaluator
    from utils.evaluation import run_episodes
    from utils.fused_updates import stack_seeds

    name = agent_names[0]
    env = make_env('cube-single-play')
    observations = np.zeros((1, env.observation_space.shape[0]), np.float32)
    actions = np.zeros((1, env.action_space.shape[0]), np.float32)
    agent = AGENTS[name].create(0, observations, actions, make_config(name))
    run_episodes(agent, env, 1, 0)  # Compile.
    start = time.perf_counter()
    run_episodes(agent, env, 20, 0)
    serial = time.perf_counter() - start
    with BatchedEvaluator([functools.partial(make_env, 'cube-single-play', 'post')], 20, workers=2) as evaluator:
        evaluator.evaluate(stack_seeds([agent]), [0])  # Start and compile.
        start = time.perf_counter()
        evaluator.evaluate(stack_seeds([agent]), [0])
        parallel = time.perf_counter() - start
    return {
        'eval_agent': name,
        'eval_20_episodes_1_worker_s': serial,
        'eval_20_episodes_2_workers_s': parallel,
        'eval_2_worker_speedup': serial / parallel,
    }


MEASURES = {
    'update': measure_update,
    'loop': measure_loop,
    'seeds': measure_seeds,
    'end_to_end': measure_end_to_end,
    'eval': measure_eval,
}
assert tuple(MEASURES) == MODES


def show(value):
    return f'{value:.3f}' if isinstance(value, float) else str(value)


def main(argv):
    agent_names, modes = check_flags(argv)
    dataset = synthetic_dataset() if {'update', 'loop', 'seeds'} & set(modes) else None
    device = jax.devices()[0]
    results = {
        'device': f'{device.platform}:{getattr(device, "device_kind", "")}',
        'agents': ','.join(agent_names),
        'batch_size': FLAGS.batch_size,
        'hidden': FLAGS.hidden,
    }
    if any('num_candidates' in AGENTS[name].default_config() for name in agent_names):
        results['num_candidates'] = FLAGS.num_candidates
    if FLAGS.encoder is not None:
        results.update({name: FLAGS[name].value for name in ('encoder', 'image_size', 'frame_stack', 'p_aug')})
    for mode in modes:
        figures = MEASURES[mode](agent_names, dataset)
        for key, value in figures.items():
            if '_over_' not in key:
                print(f'{key}: {show(value)}')
        results.update(figures)
        if mode == 'update':
            first = agent_names[0]
            for name in agent_names[1:]:
                print(
                    f'{name}/{first} updates-per-second ratio ({name}_over_{first}): '
                    f'{results[f"{name}_over_{first}"]:.3f}'
                )
    if FLAGS.write_results:
        write_markdown(results, agent_names, modes)
    print(json.dumps(results))


def command_line(modes):
    """The benchmark's command with every flag that was set (the results folder left out)."""
    args = [f'--modes={",".join(modes)}']
    for name in (
        'agents',
        'batch_size',
        'hidden',
        'num_candidates',
        'observation_dim',
        'action_dim',
        'updates',
        'rounds',
        'num_seeds',
        'encoder',
        'image_size',
        'frame_stack',
        'p_aug',
    ):
        if not FLAGS[name].using_default_value:
            args.append(f'--{name}={FLAGS[name].value}')
    return f'.venv/bin/python benchmarks/update_speed.py {" ".join(args)} --write_results'


def write_markdown(results, agent_names, modes):
    name = results['device'].replace(':', '-').replace(' ', '_').strip('-_') or 'device'
    folder = FLAGS.results_dir or DEFAULT_RESULTS_DIR
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f'{name}.md')
    lines = [f'# Update speed on {results["device"]}', '', f'Command: `{command_line(modes)}`', '']
    if 'update' in modes:
        first = agent_names[0]
        lines += ['| agent | updates/s | relative to ' + first + ' |', '| --- | --- | --- |']
        for agent in agent_names:
            rate = results[f'{agent}_updates_per_s']
            ratio = 1.0 if agent == first else results[f'{agent}_over_{first}']
            lines.append(f'| {agent} | {rate:.3f} | {ratio:.3f} |')
        lines.append('')
    lines += ['| figure | value |', '| --- | --- |']
    lines += [f'| {key} | {show(value)} |' for key, value in results.items()]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print(f'wrote {path}')


if __name__ == '__main__':
    run_app(main)
