"""The DROL paper's runtime figure: milliseconds per training step and per inference step of
FQL and of DROL with K = 1, 4, 8, 16, beside the paper's GPU numbers.

  .venv/bin/python benchmarks/runtime.py                                  # paper sizes: 4 x 512 MLPs, batch 256
  .venv/bin/python benchmarks/runtime.py --hidden=64 --depth=2 --repeats=3 --results_dir=/tmp/runtime

A training step is one jitted update (`agent.update`) on a batch already on the device, as
the FQL codebase's loop calls it; an inference step is one `sample_actions` call for one
observation, waited for, as an evaluation episode makes it. After one warm-up (compiling)
call each, every repeat times `--timed_steps` calls of each method in turn, so that load
from other processes falls on all alike; the figure and table give the mean and standard
deviation over `--repeats` repeats. The inputs are synthetic (cube-double's sizes by
default): the time of a step does not depend on the data's values. Writes runtime.png and
runtime.md to `--results_dir` and prints one JSON line with every figure.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from agents import AGENTS  # noqa: E402
from benchmarks.device_name import describe_device  # noqa: E402
from utils.errors import UserError, run_app  # noqa: E402

# The paper's runtime figure (GPU): (training ms, inference ms) per method.
PAPER_GPU_MS = {'FQL': (5.0, 0.17), 'DROL K=16': (4.9, 0.16)}

SIZE_FLAGS = ('hidden', 'depth', 'batch_size', 'observation_dim', 'action_dim', 'timed_steps', 'repeats')

FLAGS = flags.FLAGS
flags.DEFINE_string('k_values', '1,4,8,16', 'Comma-separated K (num_candidates) values of DROL to time.')
flags.DEFINE_integer('hidden', 512, 'Width of every actor and critic MLP layer (paper: 512).')
flags.DEFINE_integer('depth', 4, 'Hidden layers of every MLP (paper: 4).')
flags.DEFINE_integer('batch_size', 256, 'Training batch size (paper: 256).')
flags.DEFINE_integer('observation_dim', 37, 'Synthetic observation size (cube-double: 37).')
flags.DEFINE_integer('action_dim', 5, 'Synthetic action size (cube-double: 5).')
flags.DEFINE_integer('timed_steps', 100, 'Steps (calls) timed per repeat.')
flags.DEFINE_integer('repeats', 5, 'Repeats (the error bars are their standard deviation).')
flags.DEFINE_string('results_dir', None, 'Output folder (default benchmarks/results/runtime-<platform>).')


def parse_ks(text):
    try:
        ks = [int(part) for part in text.split(',')]
    except ValueError as error:
        raise UserError(f'--k_values={text!r}: give comma-separated integers such as 1,4,8,16.') from error
    if any(k < 1 for k in ks) or len(set(ks)) != len(ks):
        raise UserError(f'--k_values={text!r}: every K must be at least 1 and appear once.')
    return ks


def check_flags(argv):
    if len(argv) > 1:
        raise UserError(f'Unexpected argument(s): {" ".join(argv[1:])}; every setting is a --flag (see --help).')
    for name in SIZE_FLAGS:
        if FLAGS[name].value < 1:
            raise UserError(f'--{name} must be a positive integer (got {FLAGS[name].value}).')
    return parse_ks(FLAGS.k_values)


def methods(ks):
    """{label: (agent name, config overrides)}: FQL, then DROL at each K."""
    found = {'FQL': ('fql', {})}
    found.update({f'DROL K={k}': ('drol', {'num_candidates': k}) for k in ks})
    return found


def make_agent(agent_name, overrides, observation_dim, action_dim):
    config = AGENTS[agent_name].default_config()
    dims = (FLAGS.hidden,) * FLAGS.depth
    config.update(dict(actor_hidden_dims=dims, value_hidden_dims=dims, batch_size=FLAGS.batch_size, **overrides))
    observations = np.zeros((1, observation_dim), np.float32)
    return AGENTS[agent_name].create(0, observations, np.zeros((1, action_dim), np.float32), config)


def synthetic_batch(batch_size, observation_dim, action_dim):
    rng = np.random.default_rng(0)
    batch = {
        'observations': rng.normal(size=(batch_size, observation_dim)),
        'actions': rng.uniform(-1, 1, size=(batch_size, action_dim)),
        'next_observations': rng.normal(size=(batch_size, observation_dim)),
        'rewards': rng.normal(size=batch_size),
        'masks': np.ones(batch_size),
    }
    return jax.device_put({key: value.astype(np.float32) for key, value in batch.items()})


def step_calls(agent_name, overrides):
    """(training step, inference step) of one method: each call makes one step and waits for it."""
    o, a = FLAGS.observation_dim, FLAGS.action_dim
    state = {'agent': make_agent(agent_name, overrides, o, a)}
    batch = synthetic_batch(FLAGS.batch_size, o, a)
    observation = jax.device_put(np.zeros(o, np.float32))

    def train_step():
        state['agent'], info = state['agent'].update(batch)
        jax.block_until_ready(info)

    def inference_step():
        jax.block_until_ready(state['agent'].sample_actions(observation, seed=state['agent'].rng))

    return train_step, inference_step


def measure(calls, steps, repeats):
    """{label: (training ms per repeat, inference ms per repeat)} of `calls` ({label: (train, infer)}).

    One warm-up (compiling) call each, then each repeat times `steps` calls of every method in
    turn, so that load from other processes falls on all methods alike.
    """
    for pair in calls.values():
        for call in pair:
            call()
    times = {label: ([], []) for label in calls}
    for _ in range(repeats):
        for label, pair in calls.items():
            for call, record in zip(pair, times[label], strict=True):
                start = time.perf_counter()
                for _ in range(steps):
                    call()
                record.append(1000.0 * (time.perf_counter() - start) / steps)
    return times


def summarise(times):
    """{label: {'train': (mean, std), 'inference': (mean, std)}} from per-repeat milliseconds."""
    return {
        label: {
            'train': (float(np.mean(train)), float(np.std(train))),
            'inference': (float(np.mean(infer)), float(np.std(infer))),
        }
        for label, (train, infer) in times.items()
    }


def runtime_figure(summary, device, setup):
    """Two panels (training, inference): bars of this machine with error bars, the paper's GPU bars
    beside them where it gives a number; log axis, since CPU and GPU differ by orders of magnitude."""
    labels = list(summary)
    x = np.arange(len(labels))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, (kind, column, title) in zip(
        axes, (('train', 0, 'training step'), ('inference', 1, 'inference step (one observation)')), strict=True
    ):
        means = [summary[label][kind][0] for label in labels]
        stds = [summary[label][kind][1] for label in labels]
        bars = ax.bar(x - 0.2, means, 0.4, yerr=stds, capsize=4, color='tab:blue', label=f'this run: {device}')
        ax.bar_label(bars, labels=[f'{m:.3g}' for m in means], fontsize=8, padding=2)
        paper_x = [i for i, label in enumerate(labels) if label in PAPER_GPU_MS]
        paper = [PAPER_GPU_MS[labels[i]][column] for i in paper_x]
        if paper_x:
            style = dict(color='white', edgecolor='black', hatch='//', label='paper (GPU)')
            shown = ax.bar(np.array(paper_x) + 0.2, paper, 0.4, **style)
            ax.bar_label(shown, labels=[f'{p:g}' for p in paper], fontsize=8, padding=2)
        ax.set_yscale('log')
        ax.set_xticks(x, labels)
        ax.set_ylabel('milliseconds per step (log axis)')
        ax.set_title(
            f'{title}\nmean ± std over {setup["repeats"]} repeats of {setup["timed_steps"]} steps', fontsize=10
        )
        ax.grid(axis='y', alpha=0.3, which='both')
        ax.legend(fontsize=8, loc='upper left')
        ax.margins(y=0.25)
    sizes = f'{setup["depth"]} x {setup["hidden"]} MLPs, batch {setup["batch_size"]}'
    fig.suptitle(f'Runtime of FQL and DROL ({sizes}) on {device}')
    fig.tight_layout()
    return fig


def markdown(summary, device, setup, command):
    lines = [
        f'# Runtime on {device}',
        '',
        f'Command: `{command}`',
        '',
        f'{setup["depth"]} x {setup["hidden"]} MLPs, batch {setup["batch_size"]}, observation '
        f'{setup["observation_dim"]}, action {setup["action_dim"]}; mean ± std over {setup["repeats"]} repeats of '
        f'{setup["timed_steps"]} steps (ms).',
        '',
        '| method | training ms/step | inference ms/step | paper GPU training | paper GPU inference |',
        '| --- | --- | --- | --- | --- |',
    ]
    for label, figures in summary.items():
        paper = PAPER_GPU_MS.get(label, ('-', '-'))
        train, infer = figures['train'], figures['inference']
        lines.append(
            f'| {label} | {train[0]:.3f} ± {train[1]:.3f} | {infer[0]:.3f} ± {infer[1]:.3f} | {paper[0]} | {paper[1]} |'
        )
    lines += ['', '![runtime](runtime.png)', '']
    return '\n'.join(lines)


def command_line():
    args = [
        f'--{name}={FLAGS[name].value}' for name in ('k_values', *SIZE_FLAGS) if not FLAGS[name].using_default_value
    ]
    return ' '.join(['.venv/bin/python benchmarks/runtime.py', *args])


def main(argv):
    ks = check_flags(argv)
    device = describe_device()
    setup = {name: FLAGS[name].value for name in SIZE_FLAGS}
    out = FLAGS.results_dir or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'results', f'runtime-{jax.devices()[0].platform}'
    )
    calls = {label: step_calls(agent_name, overrides) for label, (agent_name, overrides) in methods(ks).items()}
    times = measure(calls, FLAGS.timed_steps, FLAGS.repeats)
    for label, (train, infer) in times.items():
        print(f'{label}: training {np.mean(train):.3f} ms, inference {np.mean(infer):.3f} ms')
    summary = summarise(times)
    os.makedirs(out, exist_ok=True)
    fig = runtime_figure(summary, device, setup)
    fig.savefig(os.path.join(out, 'runtime.png'), dpi=120)
    plt.close(fig)
    with open(os.path.join(out, 'runtime.md'), 'w') as f:
        f.write(markdown(summary, device, setup, command_line()))
    print(json.dumps({'device': device, 'out': out, **summary}))


if __name__ == '__main__':
    run_app(main)
