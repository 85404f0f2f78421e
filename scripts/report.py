"""Side-by-side report of a sweep folder, one column per agent found in its runs: Markdown
table (with the DROL paper's published numbers, and where the runs' budget, data or networks
differ from the paper's), learning curves and routing diagnostics.

  python -m scripts.report exp/sweeps/ogbench-default --out docs/results/my_sweep

Scores follow the FQL protocol: OGBench = mean success (x100) of the last three
evaluations, D4RL = normalised return of the last evaluation; mean +- std over seeds.
Runs whose eval.csv or flags.json is missing or unreadable, or whose eval.csv stops before
the run's final step, are listed with the reason and left out of the scores, never dropped
silently.
"""

import csv
import json
import os
from collections import defaultdict

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from agents import AGENTS  # noqa: E402  (registry order only: the columns are the agents found in the runs)
from envs.d4rl_utils import ANTMAZE_ENV_NAMES, is_d4rl_env  # noqa: E402
from envs.ogbench_names import parse_ogbench_name  # noqa: E402
from scripts.paper_setting import differences  # noqa: E402
from utils.errors import UserError, run_app  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string('out', None, 'Output folder (default <sweep_dir>/report).')

ROUTING_METRICS = ('training/actor/candidate_pairwise_dist', 'training/actor/duplicate_share', 'training/actor/bc_loss')
# Title and y-axis label (with unit) of each routing panel; a fraction metric is clamped to [0, 1].
ROUTING_LABELS = {
    'training/actor/candidate_pairwise_dist': ('candidate spread', 'RMS pairwise distance\n(action units per dim)'),
    'training/actor/duplicate_share': ('duplicate candidates', 'share of candidate pairs\n(fraction, 0-1)'),
    'training/actor/bc_loss': ('BC loss of the routed winner', 'mean squared error\n(action units²)'),
}
FRACTION_METRICS = ('training/actor/duplicate_share',)
SUCCESS_KEY, RETURN_KEY = 'evaluation/success', 'evaluation/normalized_return'

# The DROL paper's main table, as printed (success % or normalised return; mean ± spread over
# 8 seeds of the family's 5 tasks, or of the D4RL suite's 6 AntMaze / 12 Adroit tasks).
# Keys are agent names; 'drol' is DROL(16) and 'drol_star' DROL* (the 'drol_star' preset).
PUBLISHED_COLUMNS = ('bc', 'iql', 'rebrac', 'ifql', 'fql', 'drol', 'drol_star')
_PUBLISHED_ROWS = {
    'antmaze-large-navigate': ('11±1', '53±3', '81±5', '28±5', '79±3', '90±2', '89±6'),
    'antmaze-giant-navigate': ('0±0', '4±1', '26±8', '3±2', '9±6', '3±3', '45±24'),
    'humanoidmaze-medium-navigate': ('2±1', '33±2', '22±8', '60±14', '58±5', '65±9', '68±7'),
    'humanoidmaze-large-navigate': ('1±0', '2±1', '2±1', '11±2', '4±2', '7±4', '11±6'),
    'antsoccer-arena-navigate': ('1±0', '8±2', '0±0', '33±6', '60±2', '62±2', '65±7'),
    'cube-single-play': ('5±1', '83±3', '91±2', '79±2', '96±1', '97±2', '98±2'),
    'cube-double-play': ('2±1', '7±1', '12±1', '14±3', '29±2', '20±3', '26±7'),
    'scene-play': ('5±1', '28±1', '41±3', '30±3', '56±2', '54±3', '58±3'),
    'puzzle-3x3-play': ('2±0', '9±1', '21±1', '19±1', '30±1', '41±9', '41±9'),
    'puzzle-4x4-play': ('0±0', '7±1', '14±1', '25±5', '17±2', '16±2', '25±6'),
    'D4RL antmaze (6)': ('17', '57', '78', '65±7', '84±3', '78±8', '81±6'),
    'D4RL adroit (12)': ('48', '53', '59', '52±1', '52±1', '51±3', '52±3'),
}  # fmt: skip
PUBLISHED = {group: dict(zip(PUBLISHED_COLUMNS, row, strict=True)) for group, row in _PUBLISHED_ROWS.items()}
PUBLISHED_SOURCE = (
    "Published numbers: the DROL paper's main table (drol = DROL(16), drol_star = DROL*); its BC, IQL, "
    "ReBRAC, IFQL and FQL columns are the FQL paper's Table 2. 8 seeds, scored at 800K-1M steps (D4RL: 500K)."
)
PUBLISHED_FOOTNOTE = (
    "published = the paper's mean over the family's 5 tasks (D4RL: over the suite's 6 AntMaze or 12 Adroit "
    "tasks); it is shown in the group rows, and in a task row only where the task is the family's default "
    '(the name without -taskN). A group row of this sweep averages only the tasks it ran.'
)


# ----------------------------------------------------------------------------------------------
# Reading runs.


def read_rows(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def metric_key(env_name):
    return RETURN_KEY if is_d4rl_env(env_name) else SUCCESS_KEY


def _reason(error):
    text = str(error).strip().splitlines()[0] if str(error).strip() else ''
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def load_run(run_dir):
    """A run's identity, status ('ok' or why it is left out), evaluations and training rows.

    Never raises for a broken run: the reason goes into `status`, and a run whose identity
    (flags.json) cannot be read has env and agent None.
    """
    run = {
        'dir': run_dir,
        'env': None,
        'agent': None,
        'seed': None,
        'preset': None,
        'num_candidates': None,  # DROL's K; None for agents without it.
        'final_step': None,
        'settings': '',
        'differences': [],  # How its budget, data and networks differ from the paper's (scripts/paper_setting.py).
        'evals': [],
        'train': [],
    }
    flags_path = os.path.join(run_dir, 'flags.json')
    if not os.path.exists(flags_path):
        run['status'] = 'missing flags.json'
        return run
    try:
        with open(flags_path) as f:
            flags_record = json.load(f)
        run.update(
            env=str(flags_record['env_name']),
            agent=str(flags_record['agent']['agent_name']),
            seed=int(flags_record['seed']),
            final_step=int(flags_record['offline_steps']),
            preset=flags_record.get('preset'),
            num_candidates=flags_record['agent'].get('num_candidates'),
            settings=settings_of(flags_record),
        )
        env_key = run['env'] if is_d4rl_env(run['env']) else task_group(run['env'])[0]
        dataset_record = read_json_or_none(os.path.join(run_dir, 'dataset.json'))
        run['differences'] = differences(flags_record, dataset_record, env_key, is_d4rl_env(run['env']))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        run.update(env=None, agent=None)
        run['status'] = f'unreadable flags.json ({_reason(error)})'
        return run

    train_path = os.path.join(run_dir, 'train.csv')
    if os.path.exists(train_path):
        try:
            run['train'] = read_rows(train_path)
        except (OSError, ValueError, csv.Error):
            run['train'] = []  # Only the routing figure uses it; the scores do not.

    run['status'] = read_evals(run, os.path.join(run_dir, 'eval.csv'))
    return run


def read_json_or_none(path):
    """The JSON object in `path`, or None when the file is missing or unreadable."""
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def read_evals(run, eval_path):
    """Fills run['evals'] with (step, metric) pairs; returns the run's status."""
    if not os.path.exists(eval_path):
        return 'missing eval.csv'
    key = metric_key(run['env'])
    try:
        rows = read_rows(eval_path)
    except (OSError, ValueError, csv.Error) as error:
        return f'unreadable eval.csv ({_reason(error)})'
    if not rows:
        return 'eval.csv holds no evaluations'
    if key not in rows[0] or all(row.get(key) in (None, '') for row in rows):
        return f'eval.csv has no {key} values'
    evals = []
    for line, row in enumerate(rows, start=2):  # Line 1 is the header.
        try:
            evals.append((int(float(row['step'])), float(row[key])))
        except (KeyError, TypeError, ValueError):
            return f'unreadable eval.csv (line {line}: step={row.get("step")!r}, {key}={row.get(key)!r})'
    run['evals'] = evals
    last = evals[-1][0]
    return 'ok' if last >= run['final_step'] else f'partial: last evaluation at step {last} of {run["final_step"]}'


SETTING_KEYS = (
    'actor_hidden_dims',
    'value_hidden_dims',
    'batch_size',
    'num_candidates',
    'bc_coef',
    'alpha',
    'discount',
    'q_agg',
)


def settings_of(flags_record):
    """The settings that make a comparison comparable: network sizes, budget and coefficients."""
    agent = flags_record['agent']
    picked = {key: agent[key] for key in SETTING_KEYS if key in agent}
    picked['offline_steps'] = flags_record['offline_steps']
    if flags_record.get('preset') not in (None, 'paper'):
        picked['preset'] = flags_record['preset']
    return ', '.join(f'{k}={tuple(v) if isinstance(v, list) else v}' for k, v in picked.items())


def find_runs(sweep_dir):
    """Every run folder: with flags.json, or with an eval.csv/train.csv but no flags.json."""
    runs = []
    for folder, _, files in os.walk(sweep_dir):
        if {'flags.json', 'eval.csv', 'train.csv'} & set(files):
            runs.append(load_run(folder))
    if not runs:
        raise UserError(f'No runs (folders with flags.json) under {sweep_dir}.')
    return sorted(
        runs, key=lambda r: (r['env'] or '', r['agent'] or '', r['seed'] if r['seed'] is not None else -1, r['dir'])
    )


def usable(runs):
    """Runs whose identity is known (they have a task row); their evaluations may still be partial."""
    return [run for run in runs if run['env'] is not None]


def agent_order(names):
    """Registry order first, then names the registry does not know, sorted."""
    known = [name for name in AGENTS if name in names]
    return known + sorted(set(names) - set(known))


# ----------------------------------------------------------------------------------------------
# Scores and the Markdown table.


def score(run):
    """FQL protocol score of a finished run."""
    values = [value for _, value in run['evals']]
    if is_d4rl_env(run['env']):
        return float(values[-1])
    return 100.0 * float(np.mean(values[-3:]))


def task_group(env_name):
    """(group, task number or None, tasks in the group or None): OGBench tasks group by family
    (the name without -taskN), D4RL tasks by suite, as the published table does."""
    if is_d4rl_env(env_name):
        return ('D4RL antmaze (6)', None, 6) if env_name in ANTMAZE_ENV_NAMES else ('D4RL adroit (12)', None, 12)
    try:
        parsed = parse_ogbench_name(env_name)
    except UserError:
        parsed = None
    if parsed is None:
        return env_name.split('-task')[0], None, None
    return parsed[0], parsed[1], 5


def mean_std(values):
    if not values:
        return '-'
    return f'{np.mean(values):.1f} ± {np.std(values):.1f} (n={len(values)})'


def published_keys(runs, agents):
    """{agent: key of its published column}: the agent's name, or, where all its runs used a
    preset named '<agent>_<variant>' that the paper has a column for (e.g. 'drol_star'), that
    preset. Agents without published numbers are left out."""
    keys = {}
    for agent in agents:
        presets = {run['preset'] for run in runs if run['agent'] == agent}
        variant = next(iter(presets)) if len(presets) == 1 else None
        key = variant if isinstance(variant, str) and variant.startswith(f'{agent}_') else agent
        if key in PUBLISHED_COLUMNS:
            keys[agent] = key
    return keys


def setting_notes(runs, published):
    """Lines naming, per task and agent, how the runs set beside a published number differ from the
    paper's budget, data and networks (scripts/paper_setting.py), or saying that none does."""
    compared = [run for run in runs if run['agent'] in published and task_group(run['env'])[0] in PUBLISHED]
    found = defaultdict(int)  # (env, agent, differences) -> runs
    for run in compared:
        if run['differences']:
            found[(run['env'], run['agent'], tuple(run['differences']))] += 1
    if not found:
        return ['', "Every run beside a published number used the paper's budget, data and network sizes."]
    lines = ['', "**Not the paper's setting**: these runs differ from it, so their scores are not comparable:", '']
    for (env, agent, found_differences), count in sorted(found.items()):
        lines.append(f'- {env}, {agent} ({count} run{"s" * (count > 1)}): {"; ".join(found_differences)}.')
    return lines


def markdown_table(runs):
    known = usable(runs)
    agents = agent_order({run['agent'] for run in known})
    published = published_keys(known, agents)
    scores = defaultdict(list)  # (env, agent) -> per-seed scores
    for run in known:
        if run['status'] == 'ok':
            scores[(run['env'], run['agent'])].append(score(run))

    header = ['task'] + agents + [f'published {published[a]}' for a in agents if a in published]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    groups = defaultdict(list)
    for env in sorted({run['env'] for run in known}):
        groups[task_group(env)[0]].append(env)
    shown_published = False
    for group, members in sorted(groups.items()):
        row_published = PUBLISHED.get(group, {})
        for env in members:
            _, task, _ = task_group(env)
            default_task = task is None and not is_d4rl_env(env)
            cells = [mean_std(scores[(env, agent)]) for agent in agents]
            cells += [row_published.get(published[a], '-') if default_task else '-' for a in agents if a in published]
            shown_published |= default_task and any(c != '-' for c in cells[len(agents) :])
            lines.append(f'| {env} | ' + ' | '.join(cells) + ' |')
        if len(members) > 1 or row_published:
            size = task_group(members[0])[2]
            cells = []
            for agent in agents:
                per_task = [np.mean(scores[(env, agent)]) for env in members if scores[(env, agent)]]
                of = f'{len(per_task)} of {size}' if size else f'{len(per_task)}'
                cells.append(f'{np.mean(per_task):.1f} ({of} tasks)' if per_task else '-')
            cells += [row_published.get(published[a], '-') for a in agents if a in published]
            shown_published |= any(c != '-' for c in cells[len(agents) :])
            lines.append(f'| **{group}** (task mean) | ' + ' | '.join(cells) + ' |')
    if shown_published:
        lines += setting_notes(known, published) + ['', PUBLISHED_FOOTNOTE, '', PUBLISHED_SOURCE]
    problems = [run for run in runs if run['status'] != 'ok']
    if problems:
        lines += ['', 'Runs left out of the scores:', '']
        lines += [f'- `{run["dir"]}`: {run["status"]}' for run in problems]
    return '\n'.join(lines)


def settings_table(runs):
    seen = sorted({(run['env'], run['agent'], run['settings']) for run in usable(runs)})
    lines = ['| task | agent | settings |', '| --- | --- | --- |']
    return '\n'.join(lines + [f'| {env} | {agent} | {settings} |' for env, agent, settings in seen])


# ----------------------------------------------------------------------------------------------
# Figures.


def bootstrap_band(matrix, rng, samples=1000):
    """Mean over seeds (rows) with a 95% bootstrap interval at each column."""
    means = matrix.mean(axis=0)
    if matrix.shape[0] < 2:
        return means, means, means
    picks = rng.integers(0, matrix.shape[0], size=(samples, matrix.shape[0]))
    boot = matrix[picks].mean(axis=1)
    return means, np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)


def train_series(run, key):
    """{step: value} of one training metric; rows without a readable value are skipped."""
    series = {}
    for row in run['train']:
        try:
            series[int(float(row['step']))] = float(row[key])
        except (KeyError, TypeError, ValueError):
            continue
    return series


def curves(series_by_agent):
    """{agent: (steps, seeds x steps matrix)} over the steps every seed of the agent has logged."""
    result = {}
    for agent, series in series_by_agent.items():
        series = [s for s in series if s]
        if not series:
            continue
        steps = sorted(set.intersection(*(set(s) for s in series)))
        if steps:
            result[agent] = (np.array(steps), np.array([[s[t] for t in steps] for s in series]))
    return result


def agent_styles(runs):
    """One (colour, marker) per agent, the same in every figure of the report."""
    palette = plt.get_cmap('tab10').colors
    agents = agent_order({r['agent'] for r in usable(runs)})
    return {agent: (palette[i % len(palette)], MARKERS[i % len(MARKERS)]) for i, agent in enumerate(agents)}


def set_y_limits(ax, values, fixed=None, clamp=None):
    """Fixed limits, or the data's range padded by 5% (1.0 when the range is 0), within `clamp`."""
    if fixed is not None:
        ax.set_ylim(*fixed)
        return
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if values.size == 0:
        return
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low) if high > low else 1.0
    low, high = low - pad, high + pad
    if clamp is not None:
        margin = 0.05 * (clamp[1] - clamp[0])
        low, high = max(low, clamp[0] - margin), min(high, clamp[1] + margin)
    ax.set_ylim(low, high)


def set_x_steps(ax, runs):
    """Gradient steps from 0 to the runs' final step, with 200k / 1M style ticks."""
    last = max([run['final_step'] or 0 for run in runs] + [0])
    if last > 0:
        ax.set_xlim(-0.02 * last, 1.02 * last)
    ax.xaxis.set_major_formatter(EngFormatter(sep=''))
    ax.set_xlabel('gradient steps')


MARKERS = ('o', 's', '^', 'D', 'v', 'P', 'X', '*')


def plot_band(ax, steps, matrix, rng, style, label):
    """Mean with markers (so a single evaluation shows as a dot) and, over 2+ seeds, its band."""
    color, marker = style
    mean, low, high = bootstrap_band(matrix, rng)
    few = len(steps) <= 3
    ax.plot(
        steps,
        mean,
        color=color,
        marker=marker,
        markersize=10 if few else 4,
        markeredgewidth=2 if few else 1,
        markerfacecolor='none' if few else color,
        markevery=max(1, len(steps) // 25),
        linewidth=1.5,
        label=label,
        zorder=3,
    )  # Hollow when few: coinciding dots of two agents stay visible.
    if matrix.shape[0] > 1:
        ax.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
    return [*mean, *low, *high]


def learning_curve_figure(runs, env, rng):
    """Mean evaluation score over seeds per agent (finished runs; unfinished ones where an agent
    has no finished run), or None when no run of `env` has readable evaluations."""
    env_runs = [run for run in usable(runs) if run['env'] == env and run['evals']]
    if not env_runs:
        return None
    d4rl = is_d4rl_env(env)
    scale = 1.0 if d4rl else 100.0
    styles = agent_styles(runs)
    fig, ax = plt.subplots(figsize=(6, 4))
    values = []
    for agent in agent_order({run['agent'] for run in env_runs}):
        mine = [run for run in env_runs if run['agent'] == agent]
        finished = [run for run in mine if run['status'] == 'ok']
        chosen = finished or mine
        found = curves({agent: [dict(run['evals']) for run in chosen]})
        if agent not in found:
            continue
        steps, matrix = found[agent]
        label = f'{agent} (n={matrix.shape[0]}{"" if finished else ", unfinished"})'
        values += plot_band(ax, steps, matrix * scale, rng, styles[agent], label)
    set_x_steps(ax, env_runs)
    if d4rl:
        ax.set_ylabel('normalised return (0-100 scale)')
        set_y_limits(ax, values)
    else:
        ax.set_ylabel('success rate (%)')
        set_y_limits(ax, values, fixed=(-3, 103))
        ax.set_yticks(range(0, 101, 20))
    ax.set_title(f'{env}\nmean over seeds; shaded: 95% bootstrap interval', fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(title='agent (seeds)', fontsize=9)
    fig.tight_layout()
    return fig


def routing_figure(runs, env, rng):
    """Routing diagnostics of every agent whose training log of `env` has routing columns, or None."""
    env_runs = [run for run in usable(runs) if run['env'] == env]
    per_metric = {key: {} for key in ROUTING_METRICS}
    for agent in agent_order({run['agent'] for run in env_runs}):
        for key in ROUTING_METRICS:
            series = [train_series(run, key) for run in env_runs if run['agent'] == agent]
            per_metric[key].update(curves({agent: series}))
    if not any(per_metric.values()):
        return None
    styles = agent_styles(runs)
    fig, axes = plt.subplots(1, len(ROUTING_METRICS), figsize=(4.6 * len(ROUTING_METRICS), 4.2))
    handles = {}  # label -> line, one legend entry per agent for the whole figure
    for ax, key in zip(axes, ROUTING_METRICS, strict=True):
        title, ylabel = ROUTING_LABELS[key]
        values = []
        for agent, (steps, matrix) in per_metric[key].items():
            values += plot_band(ax, steps, matrix, rng, styles[agent], f'{agent} (n={matrix.shape[0]})')
        for line in ax.get_lines():
            handles.setdefault(line.get_label(), line)
        clamp = (0.0, 1.0) if key in FRACTION_METRICS else None
        set_y_limits(ax, values, clamp=clamp)
        set_x_steps(ax, env_runs)
        ax.set_ylabel(ylabel)
        ax.set_title(f'{title}\n({key.split("/")[-1]})', fontsize=10)
        ax.grid(alpha=0.3)
        if not per_metric[key]:
            ax.text(0.5, 0.5, 'not logged', ha='center', va='center', transform=ax.transAxes, color='gray')
    # Below the panels, so that it hides no curve.
    fig.legend(
        list(handles.values()),
        list(handles),
        title='agent (seeds)',
        loc='lower center',
        ncol=len(handles),
        fontsize=9,
        frameon=False,
    )
    fig.suptitle(f'Routing diagnostics: {env} (mean over seeds; shaded: 95% bootstrap interval)')
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def save(fig, out_dir, name):
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_learning_curves(runs, env, out_dir, rng):
    fig = learning_curve_figure(runs, env, rng)
    return save(fig, out_dir, f'curve_{env}.png') if fig is not None else None


def plot_routing(runs, env, out_dir, rng):
    fig = routing_figure(runs, env, rng)
    return save(fig, out_dir, f'routing_{env}.png') if fig is not None else None


# ----------------------------------------------------------------------------------------------
# The report.


def title(runs):
    agents = agent_order({run['agent'] for run in usable(runs)})
    if not agents:
        return '# Agents compared'
    if len(agents) == 1:
        return f'# {agents[0]}'
    return f'# {" vs ".join(agents)}' if len(agents) <= 4 else f'# Agents compared: {", ".join(agents)}'


def write_report(sweep_dir, out_dir):
    runs = find_runs(sweep_dir)
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    sections = [
        title(runs),
        '',
        f'Sweep: `{sweep_dir}`. Scores: OGBench = success rate (%) averaged over the '
        'last three evaluations; D4RL = normalised return of the last evaluation; mean ± std over seeds.',
        '',
        markdown_table(runs),
        '',
        '## Settings',
        '',
        settings_table(runs),
        '',
    ]
    for env in sorted({run['env'] for run in usable(runs)}):
        curve = plot_learning_curves(runs, env, out_dir, rng)
        if curve:
            sections.append(f'![{env}]({os.path.basename(curve)})')
        routing = plot_routing(runs, env, out_dir, rng)
        if routing:
            sections.append(f'![routing {env}]({os.path.basename(routing)})')
    path = os.path.join(out_dir, 'README.md')
    with open(path, 'w') as f:
        f.write('\n'.join(sections) + '\n')
    return path


def main(argv):
    if len(argv) != 2:
        raise UserError('usage: python -m scripts.report SWEEP_DIR [--out DIR]')
    sweep_dir = argv[1]
    if not os.path.isdir(sweep_dir):
        raise UserError(f'{sweep_dir} is not a folder.')
    print(f'wrote {write_report(sweep_dir, FLAGS.out or os.path.join(sweep_dir, "report"))}')


if __name__ == '__main__':
    run_app(main)
