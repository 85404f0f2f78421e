"""The one-command device check: what an accelerator makes of this project, in about 6 minutes on one
GPU including compiles, printed and written to <results_dir>/<device>.md.

  .venv/bin/python benchmarks/accelerator_check.py                     # paper sizes (update_speed.py's flags)
  .venv/bin/python benchmarks/accelerator_check.py --precision=bf16
  .venv/bin/python benchmarks/accelerator_check.py --smoke             # tiny, DROL and FQL, CPU, under 2 minutes

It measures, with `benchmarks/update_speed.py`'s runners and sizes (`--hidden`, `--batch_size`,
`--num_candidates`, `--updates`, `--rounds`, `--agents`):
- updates/s of every agent: fused 1 and 100 updates per call (main.py's training call), and
  `agent.update(batch)` once per call with its batches already on the device (the FQL codebase's
  loop); for DROL and FQL also `update_step` jitted without donating the agent, as `agent.update`
  was before it donated;
- aggregate updates/s of `--stack_counts` stacked DROL and FQL agents (fused 100 per call);
- each program's first call (tracing and compiling; `--compile_threads` compile at once, so a
  first call may have waited for others), the precision in force, and the device's peak memory;
- where OGBench is installed, a short main.py run on a generated cube-single dataset, once
  without and once with evaluation: the difference is the evaluation's time.
The last printed line is one JSON object with every figure.
"""

import concurrent.futures
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks import update_speed  # noqa: E402  (also defines the size flags used here)
from benchmarks.device_name import describe_device  # noqa: E402
from utils.datasets import sample_batch, to_device  # noqa: E402
from utils.errors import UserError, run_app  # noqa: E402
from utils.fused_updates import unstack_seed  # noqa: E402
from utils.precision import PRECISIONS, use_precision  # noqa: E402
from utils.ranges import parse_ints  # noqa: E402

STACKED_AGENTS = ('drol', 'fql')
STACKED_UPDATES = 100
# What --smoke sets, where the flag was not given: DROL and FQL only, whose programs take the same
# paths as the other agents', so that the whole check runs in under 2 minutes on a 2-core CPU.
SMOKE_SIZES = dict(
    agents='drol,fql', hidden=16, batch_size=8, num_candidates=4, updates=4, rounds=1, stack_counts='1,2',
    run_steps=2, run_episodes=1,
)  # fmt: skip
UPDATE_SPEED_ONLY = ('modes', 'num_seeds', 'write_results')
ENVIRONMENT_PACKAGES = ('ogbench', 'gymnasium', 'mujoco', 'dm_control')

FLAGS = flags.FLAGS
flags.DEFINE_bool('smoke', False, 'Tiny sizes, DROL and FQL, 1 and 2 stacked, a 2-update main.py run: the CPU check.')
if 'precision' not in FLAGS:  # update_speed.py's own --precision, where it has one, is the same choice.
    flags.DEFINE_enum('precision', 'default', PRECISIONS, 'Matrix-product precision (see utils/precision.py).')
flags.DEFINE_string('stack_counts', '1,8,40,160', 'Stacked DROL and FQL agents to time (--smoke: 1,2).')
flags.DEFINE_integer('compile_threads', min(8, os.cpu_count() or 1), 'Programs compiled at once.')
flags.DEFINE_integer('run_steps', 2000, 'Updates of the main.py run (100 per call; --smoke: 2).')
flags.DEFINE_integer('run_episodes', 10, 'Episodes of each of its two evaluations (--smoke: 1).')


def check_flags(argv):
    """(agent names, stacked counts) after --smoke's sizes are applied, or a UserError."""
    for name in UPDATE_SPEED_ONLY:
        if not FLAGS[name].using_default_value:
            raise UserError(f'--{name} belongs to benchmarks/update_speed.py; this check sets what it times itself.')
    if FLAGS.smoke:
        # Tiny programs, whose speed is not the point: XLA compiles them 2x faster without optimising, and on the
        # CPU faster again with its older elemental emitters (no effect on other devices). Each flag once: JAX's
        # compilation cache keys on the flags as written, so a repeated one would miss programs cached without it.
        flags_now = os.environ.get('XLA_FLAGS', '').split()
        fast = ['--xla_backend_optimization_level=0', '--xla_cpu_use_fusion_emitters=false']
        os.environ['XLA_FLAGS'] = ' '.join(flags_now + [flag for flag in fast if flag not in flags_now])
        for name, value in SMOKE_SIZES.items():
            if FLAGS[name].using_default_value:
                FLAGS[name].value = value
    for name in ('compile_threads', 'run_steps', 'run_episodes'):
        if FLAGS[name].value < 1:
            raise UserError(f'--{name} must be a positive integer (got {FLAGS[name].value}).')
    counts = parse_ints(FLAGS.stack_counts, '--stack_counts')
    if min(counts) < 1:
        raise UserError(f'--stack_counts={FLAGS.stack_counts!r}: every count must be at least 1.')
    agent_names, _ = update_speed.check_flags(argv)
    return agent_names, counts


def update_runner(agent_name, dataset, data, update=None):
    """(run_once, updates): `--updates` calls of `update` (default `agent.update`), one update each,
    on batches sampled on the device beforehand, so that only the calls are timed."""
    state = {'agent': update_speed.create(agent_name, dataset)}
    keys = jax.random.split(jax.random.PRNGKey(1), FLAGS.updates)
    batches = jax.jit(jax.vmap(lambda key: sample_batch(data, key, FLAGS.batch_size)))(keys)
    batches = [unstack_seed(batches, i) for i in range(FLAGS.updates)]
    update = update or type(state['agent']).update

    def run_once():
        agent = state['agent']
        for batch in batches:
            agent, _ = update(agent, batch)
        jax.block_until_ready(agent)
        state['agent'] = agent

    return run_once, FLAGS.updates


def per_agent_runners(agent_names, dataset, data):
    runners = {}
    for name in agent_names:
        runners[f'{name}_fused1'] = update_speed.fused_runner(name, dataset, data, 1)
        runners[f'{name}_fused100'] = update_speed.fused_runner(name, dataset, data, 100)
        runners[f'{name}_update'] = update_runner(name, dataset, data)
        if name in STACKED_AGENTS:
            undonated = jax.jit(lambda agent, batch: agent.update_step(batch))
            runners[f'{name}_update_undonated'] = update_runner(name, dataset, data, undonated)
    return runners


def stacked_runners(agent_name, counts, dataset, data):
    runners = {}
    for count in counts:
        run_once, updates = update_speed.fused_runner(
            agent_name, dataset, data, STACKED_UPDATES, num_seeds=count, total_updates=STACKED_UPDATES
        )
        runners[f'{agent_name}_{count}_stacked'] = (run_once, updates * count)
    return runners


def first_calls(runners):
    """{key: seconds of its first call}: tracing, compiling and one run, `--compile_threads` at once
    (XLA compiles without holding Python's lock, so several programs compile together)."""

    def timed(run_once):
        start = time.perf_counter()
        run_once()
        return time.perf_counter() - start

    with concurrent.futures.ThreadPoolExecutor(FLAGS.compile_threads) as pool:
        futures = {key: pool.submit(timed, run_once) for key, (run_once, _) in runners.items()}
    return {key: future.result() for key, future in futures.items()}


def peak_memory_gb():
    """The device's peak memory in use so far (GB), or None where jax does not report it (CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    return stats['peak_bytes_in_use'] / 1e9 if 'peak_bytes_in_use' in stats else None


def measure_group(runners, figures, group):
    """Times one group of runners (first calls, then update_speed's interleaved median) into `figures`."""
    print(f'{group}: compiling {len(runners)} programs ...', flush=True)
    start = time.perf_counter()
    first = first_calls(runners)
    figures['compile_phase_s'][group] = time.perf_counter() - start
    rates = update_speed.median_rates(runners)
    for key, rate in rates.items():
        figures['updates_per_s'][key] = rate
        figures['first_call_s'][key] = first[key]
        print(f'  {key}: {rate:,.1f} updates/s (first call {first[key]:.1f} s)', flush=True)
    figures['peak_memory_gb'][group] = peak_memory_gb()


def main_py_command(dataset_path, save_dir, evaluate):
    steps = FLAGS.run_steps
    per_call = 100 if steps % 100 == 0 else 1
    dims = f'({",".join([str(FLAGS.hidden)] * 4)})'
    return [
        sys.executable, os.path.join(ROOT, 'main.py'), '--agent=drol', '--env_name=cube-single-play',
        f'--dataset_path={dataset_path}', f'--save_dir={save_dir}', f'--offline_steps={steps}',
        f'--updates_per_call={per_call}', f'--log_interval={steps}', f'--save_interval={steps}',
        f'--eval_interval={steps if evaluate else 0}', f'--eval_episodes={FLAGS.run_episodes}',
        f'--agent.actor_hidden_dims={dims}', f'--agent.value_hidden_dims={dims}',
        f'--agent.batch_size={FLAGS.batch_size}', f'--precision={FLAGS.precision}',
    ]  # fmt: skip


def measure_main_py():
    """{'train_only_s', 'with_evaluation_s', 'evaluation_s', 'final_line'}: wall times of two short
    main.py runs (evaluation off, then at the first and last step), or {'skipped': why}."""
    missing = [name for name in ENVIRONMENT_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        return {'skipped': f'{", ".join(missing)} not installed: no main.py run with evaluation'}
    from tests.helpers import write_ogbench_dataset

    # The child allocates device memory as it goes: this process already holds jax's default share.
    env = {**os.environ, 'XLA_PYTHON_CLIENT_PREALLOCATE': 'false'}
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        # Random rollouts, 1,000 rows (seconds on a CPU); --smoke's 2 updates of batch 8 need only 100.
        episodes, steps = (2, 50) if FLAGS.smoke else (5, 200)
        path = write_ogbench_dataset(os.path.join(folder, 'cube-single-play-v0.npz'), episodes=episodes, steps=steps)
        for key, evaluate in (('train_only_s', False), ('with_evaluation_s', True)):
            command = main_py_command(path, os.path.join(folder, key), evaluate)
            start = time.perf_counter()
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
            figures[key] = time.perf_counter() - start
            if result.returncode != 0:
                return {'skipped': f'main.py failed: {(result.stderr.strip().splitlines() or ["?"])[-1]}'}
        finals = [line for line in result.stdout.splitlines() if line.startswith('Final evaluation')]
        figures['final_line'] = finals[-1] if finals else ''
    figures['evaluation_s'] = figures['with_evaluation_s'] - figures['train_only_s']
    return figures


def markdown(figures, agent_names, counts):
    sizes = figures['sizes']
    rates, first = figures['updates_per_s'], figures['first_call_s']
    lines = [
        f'# Accelerator check on {figures["device"]}',
        '',
        f'Command: `{figures["command"]}` (jax {jax.__version__}; {figures["total_s"]:.0f} s in all)',
        '',
        f'{figures["precision"]}',
        '',
        f'Sizes: {sizes}. Median of {FLAGS.rounds} rounds; first call = tracing + compiling + one run.',
        '',
        '| agent | fused 1/call | fused 100/call | agent.update/call | update / fused 1 | update, not donated |',
        '| --- | --- | --- | --- | --- | --- |',
    ]
    for name in agent_names:
        undonated = rates.get(f'{name}_update_undonated')
        lines.append(
            f'| {name} | {rates[f"{name}_fused1"]:,.1f} | {rates[f"{name}_fused100"]:,.1f} | '
            f'{rates[f"{name}_update"]:,.1f} | {rates[f"{name}_update"] / rates[f"{name}_fused1"]:.2f}x | '
            + (f'{undonated:,.1f} |' if undonated else '- |')
        )
    lines += ['', '| stacked agents | ' + ' | '.join(f'{n} updates/s (gain over 1)' for n in STACKED_AGENTS) + ' |']
    lines.append('| --- |' + ' --- |' * len(STACKED_AGENTS))
    for count in counts:
        cells = []
        for name in STACKED_AGENTS:
            rate, single = rates[f'{name}_{count}_stacked'], rates[f'{name}_{min(counts)}_stacked'] / min(counts)
            cells.append(f'{rate:,.1f} ({rate / single:.2f}x)')
        lines.append(f'| {count} | ' + ' | '.join(cells) + ' |')
    lines += ['', '| program | first call (s) |', '| --- | --- |']
    lines += [f'| {key} | {seconds:.1f} |' for key, seconds in first.items()]
    phases = figures['compile_phase_s'].items()
    lines += ['', 'Compile phases (wall s): ' + ', '.join(f'{k} {v:.1f}' for k, v in phases)]
    memory = figures['peak_memory_gb']
    lines.append(
        'Peak device memory (GB) after each group: '
        + ', '.join(f'{k} {"not reported" if v is None else f"{v:.2f}"}' for k, v in memory.items())
    )
    run = figures['main_py']
    if 'skipped' in run:
        lines += ['', f'main.py run: skipped ({run["skipped"]}).', '']
    else:
        lines += [
            '',
            f'main.py, DROL on a generated cube-single dataset, {FLAGS.run_steps} updates: '
            f'{run["train_only_s"]:.1f} s without evaluation, {run["with_evaluation_s"]:.1f} s with two '
            f'{FLAGS.run_episodes}-episode evaluations: evaluation {run["evaluation_s"]:.1f} s, training and start-up '
            f'{run["train_only_s"]:.1f} s. {run["final_line"]}',
            '',
        ]
    return '\n'.join(lines)


def main(argv):
    start = time.perf_counter()
    agent_names, counts = check_flags(argv)
    figures = {'device': describe_device(), 'precision': use_precision(FLAGS.precision)}
    print(f'Accelerator check on {figures["device"]}. {figures["precision"]}', flush=True)
    figures['command'] = ' '.join(['.venv/bin/python', 'benchmarks/accelerator_check.py', *sys.argv[1:]])
    figures['sizes'] = {name: FLAGS[name].value for name in ('hidden', 'batch_size', 'num_candidates', 'updates')}
    figures.update(updates_per_s={}, first_call_s={}, compile_phase_s={}, peak_memory_gb={})
    dataset = update_speed.synthetic_dataset()
    data = to_device(dataset)
    measure_group(per_agent_runners(agent_names, dataset, data), figures, 'per_agent')
    for name in STACKED_AGENTS:
        measure_group(stacked_runners(name, counts, dataset, data), figures, f'{name}_stacked')
    print('main.py run ...', flush=True)
    figures['main_py'] = measure_main_py()
    print(f'  {figures["main_py"]}', flush=True)
    figures['total_s'] = time.perf_counter() - start
    folder = FLAGS.results_dir or os.path.join(ROOT, 'benchmarks', 'results', 'accelerator-check')
    os.makedirs(folder, exist_ok=True)
    first = jax.devices()[0]
    name = f'{first.platform}-{first.device_kind}'.lower().replace(' ', '-') + ('-smoke' if FLAGS.smoke else '')
    path = os.path.join(folder, f'{name}.md')
    with open(path, 'w') as f:
        f.write(markdown(figures, agent_names, counts))
    print(f'wrote {path}')
    print(json.dumps(figures))


if __name__ == '__main__':
    run_app(main)
