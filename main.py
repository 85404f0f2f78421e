"""Trains and evaluates an agent offline (then online with `--online_steps`): `python main.py --agent=drol`.

Flags follow the FQL codebase; `--agent=NAME` (any key of `agents.AGENTS`, or a config file
path) with `--agent.KEY=VALUE` overrides. Each seed writes flags.json, dataset.json, train.csv,
eval.csv and checkpoints into `<save_dir>/<run_group>/<agent>_<env_name>_sd<seed>/`;
rerunning the same command continues from the latest checkpoint there. `--tasks=1-5` trains those
tasks of an OGBench family together (one copy of the data, per-task rewards), each (task, seed)
in the run directory its standalone run (`--env_name=<family>-task<t>`) would have.

The run, top to bottom in `run()`: prepare it (check flags and agent settings, make and lock the
run directories, load the data, write the records, create, restore or resume one agent per (task,
seed); a run refused there leaves no directory it made), then the loop over the state it changes
(`utils/run_state.py`): fused updates on the device (offline), or one environment step and one
update per step (online, `utils/online.py`), training logs, checkpoints, evaluation; then the end.
"""

import functools
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from absl import flags, logging
from ml_collections import config_flags

from agents import AGENTS
from envs.d4rl_utils import is_antmaze
from envs.env_utils import (
    FirstCallReuses,
    check_dataset_matches_env,
    is_d4rl,
    make_env,
    make_env_and_datasets,
    make_task_envs_and_datasets,
    preset_key,
    stacked,
)
from envs.ogbench_names import is_visual, task_names
from utils.checkpoints import (
    checkpoint_path,
    checkpoint_steps,
    latest_checkpoint,
    load_common_step,
    load_online_state,
    remove_checkpoints,
    restore_from,
)
from utils.config_checks import (
    agent_settings,
    check_agent_keys,
    check_agent_name,
    check_pixel_flags,
    check_run_flags,
)
from utils.datasets import example_observations, to_device
from utils.errors import UserError, run_app
from utils.evaluator import Evaluator
from utils.fused_updates import (
    TrainingDiverged,
    data_key,
    diverged_seeds,
    make_train_fn,
    make_validation_fn,
    shard_seeds,
    stack_seeds,
)
from utils.log_utils import CsvLogger, WandbLogger
from utils.online import Online
from utils.precision import PRECISIONS, use_precision
from utils.presets import apply_preset, check_preset, preset_offline_steps
from utils.progress import Progress, duration
from utils.run_dir import check_or_write_record, locked_run_dirs, run_dir_for, write_json
from utils.run_state import RunState
from utils.stop_signals import StopRequested, StopSignals

# Known-harmless noise from the simulators on headless machines; real warnings still show.
warnings.filterwarnings('ignore', message='.*precision lowered by casting.*')
warnings.filterwarnings('ignore', module='glfw')
logging.set_verbosity(logging.WARNING)

DEFAULT_AGENT = 'drol'
FLAGS = flags.FLAGS

flags.DEFINE_string('run_group', 'Debug', 'Run group: the folder under save_dir holding this run.')
flags.DEFINE_integer('seed', 0, 'Random seed (the first one, with --num_seeds).')
flags.DEFINE_string('env_name', 'cube-double-play', 'OGBench name (short or full) or D4RL name.')
flags.DEFINE_string(
    'tasks', None, "Tasks of the --env_name family trained together in this process, e.g. '1-5' (OGBench)."
)
flags.DEFINE_string('save_dir', 'exp/', 'Where run directories are created.')
flags.DEFINE_string('restore_path', None, 'Run directory whose checkpoint initialises the agent.')
flags.DEFINE_integer('restore_epoch', None, 'Step of the checkpoint in --restore_path (default: latest).')

flags.DEFINE_integer('offline_steps', 1000000, 'Number of offline gradient steps.')
flags.DEFINE_integer('online_steps', 0, 'Online steps after the offline ones: one env step and one update each.')
flags.DEFINE_integer('buffer_size', 2000000, 'Replay buffer size (without balanced sampling: offline data included).')
flags.DEFINE_bool('balanced_sampling', False, 'Online batches: half offline data, half replay buffer.')
flags.DEFINE_integer('log_interval', 5000, 'Training-metrics logging interval (steps).')
flags.DEFINE_integer('eval_interval', 100000, 'Evaluation interval (steps), also at step 1; 0 disables evaluation.')
flags.DEFINE_integer('save_interval', 100000, 'Checkpoint interval (steps); the final step is always saved.')
flags.DEFINE_float(
    'save_minutes', 10.0, 'Also save when this many minutes passed since the last save (the newest kept).'
)
flags.DEFINE_integer('eval_episodes', 50, 'Episodes per evaluation.')
flags.DEFINE_integer('video_episodes', 0, 'Extra evaluation episodes rendered to a GIF in the run directory.')
flags.DEFINE_bool('resume', True, 'Continue from the latest checkpoint in the run directory if there is one.')

flags.DEFINE_string('dataset_dir', '~/.ogbench/data', 'Folder holding OGBench datasets.')
flags.DEFINE_string('dataset_path', None, 'Explicit dataset file (OGBench .npz or D4RL .hdf5).')
flags.DEFINE_enum(
    'success_timing',
    'post',
    ['pre', 'post'],
    "OGBench single-task success on s' ('post', as in ogbench 1.1.0 and the papers) or s ('pre').",
)
flags.DEFINE_integer(
    'gen_episodes',
    None,
    'Episodes to generate when an OGBench dataset cannot be downloaded '
    '(default: a complete generated set of at least 100 episodes, else 100).',
)

flags.DEFINE_integer(
    'frame_stack', None, 'Pixel tasks: the last N frames of an episode stacked on the channel axis (FQL paper: 3).'
)
flags.DEFINE_float('p_aug', None, 'Pixel tasks: probability that a batch is randomly cropped (FQL paper: 0.5).')

flags.DEFINE_integer('updates_per_call', 1, 'Updates fused into one jitted call (lax.scan).')
flags.DEFINE_integer('num_seeds', 1, 'Independent seeds trained together in this process (vmap).')
flags.DEFINE_integer('eval_workers', 1, 'Processes sharing the evaluation episodes.')
flags.DEFINE_string('preset', 'paper', "Per-environment settings: 'paper', 'drol_star' (paper + tuned K) or 'none'.")

flags.DEFINE_enum(
    'precision',
    'default',
    list(PRECISIONS),
    "Matrix products: the device's own ('default': TF32 on recent NVIDIA GPUs), float32 ('highest', "
    "the CPU's numbers) or bfloat16 ('bf16', fastest); see utils/precision.py.",
)
flags.DEFINE_enum('wandb_mode', 'disabled', ['disabled', 'online', 'offline'], 'Weights & Biases logging.')
flags.DEFINE_string('wandb_project', 'drol', 'Weights & Biases project.')


class Runs(NamedTuple):
    """The (task, seed) runs of this process in stacking order, (task 0, seed 0), (task 0, seed 1), ...,
    each with exactly the run directory its standalone run has."""

    env_names: list
    pairs: list
    labels: list
    run_dirs: list

    @property
    def seeds(self):
        return [seed for _, seed in self.pairs]

    @property
    def task_ids(self):
        return [self.env_names.index(env_name) for env_name, _ in self.pairs]

    @property
    def where(self):
        return self.run_dirs[0] + (' and others' if len(self.run_dirs) > 1 else '')


class Training(NamedTuple):
    """What the loop uses and never changes: the jitted update and validation functions, the data on
    the device, the online phase's maker, the evaluator, the logs and the progress display."""

    flags: Any
    runs: Runs
    train_fn: Callable
    single_fn: Callable
    validation_fn: Callable
    data: Any
    val_data: Any
    tasks_arg: tuple
    start_online: Callable
    evaluator: Evaluator
    train_logs: list
    eval_logs: list
    wandb_runs: list
    progress: Progress

    def close(self):
        self.progress.close()
        self.evaluator.close()
        for wandb_run in self.wandb_runs:
            wandb_run.finish()


def run(flags, explicit_keys=frozenset()):
    """Trains `flags.num_seeds` seeds of one agent (of each task, with --tasks); returns the final
    agents, stacked task-major: (task 0, seed 0), (task 0, seed 1), ..."""
    print(use_precision(flags.precision))  # Before anything is compiled: jitted functions keep it.
    config, applied, runs = plan_runs(flags, explicit_keys)
    # A run refused before training leaves none of the directories it created behind.
    with locked_run_dirs(runs.run_dirs) as locks:  # noqa: F841  (held until the process ends)
        train_data, val_data, provenance, data_envs = load_data(flags, runs.env_names)
        write_records(flags, config, applied, runs, provenance)
        agents, keys, start_step, resumed = first_agents(flags, config, runs, train_data)
    train_logs, eval_logs = open_logs(runs.run_dirs, start_step)
    total_steps = flags.offline_steps + flags.online_steps
    if resumed is not None and start_step >= total_steps:
        report_finished(flags, runs, eval_logs, start_step)
        return stack_seeds(agents)
    state = RunState(
        shard_seeds(stack_seeds(agents), len(runs.pairs)),
        shard_seeds(stack_seeds(keys), len(runs.pairs)),
        start_step,
        elapsed_before=resumed.get('elapsed', 0.0) if resumed is not None else 0.0,
    )
    datasets = (train_data, val_data, data_envs)
    training = start_training(flags, config, runs, state, datasets, (train_logs, eval_logs))
    try:
        with StopSignals() as stop:
            while state.step < total_steps:
                info, nonfinite = train(training, state)
                stop_if_diverged(nonfinite, state.step, runs.labels, runs.run_dirs)
                final = state.step in (flags.offline_steps, total_steps)  # Each phase's end: logged, saved, evaluated.
                if state.step == 1 or state.step % flags.log_interval == 0 or final:
                    log_training(training, state, info)
                on_interval = bool(flags.save_interval) and state.step % flags.save_interval == 0
                if on_interval or final or stop.received or state.seconds_since_save() >= 60 * flags.save_minutes:
                    state.save(runs.run_dirs, kept=on_interval or final)  # Before evaluating: a failure there keeps it.
                if stop.received:
                    raise StopRequested(
                        f'Stopped by {stop.name} at step {state.step}; saved checkpoint_{state.step}. '
                        'Rerun the same command to continue.',
                        stop.exit_code,
                    )
                if flags.eval_interval and (state.step == 1 or state.step % flags.eval_interval == 0 or final):
                    evaluate(training, state)
        report_final_evaluation(training, state, start_step)
    finally:
        training.close()
    return state.agents


def plan_runs(flags, explicit_keys):
    """(agent config, preset values applied, runs). Checks come first, so a typo costs a second, not
    a traceback after minutes of compilation."""
    apply_step_preset(flags)
    check_run_flags(flags)
    env_names = task_names(flags.env_name, flags.tasks) if flags.tasks else [flags.env_name]
    check_task_flags(flags)
    config, applied = agent_config(flags, explicit_keys)
    check_pixel_flags(flags, config.encoder, is_visual(flags.env_name))
    if applied:
        print(f'Preset {flags.preset!r} for {flags.env_name}: {applied} (override with --agent.KEY=...)')
    note = AGENTS[config.agent_name].preset_note(
        flags.preset, preset_key(flags.env_name), online=bool(flags.online_steps), explicit_keys=explicit_keys
    )
    if note:
        print(note)
    pairs = [(env_name, seed) for env_name in env_names for seed in range(flags.seed, flags.seed + flags.num_seeds)]
    labels = [f'{env_name} seed {seed}' if flags.tasks else f'seed {seed}' for env_name, seed in pairs]
    run_dirs = [
        run_dir_for(flags.save_dir, flags.run_group, config.agent_name, env_name, seed) for env_name, seed in pairs
    ]
    return config, applied, Runs(env_names, pairs, labels, run_dirs)


def apply_step_preset(flags):
    """The papers' budget on D4RL and pixel-based tasks (500K offline steps, not the flag's 1M) when
    --offline_steps is not given; printed, and saved in flags.json as every flag is."""
    check_preset(flags.preset)
    steps = preset_offline_steps(flags.preset, is_d4rl(flags.env_name) or is_visual(flags.env_name))
    if steps and not flags['offline_steps'].present:
        flags.offline_steps = steps
        print(f"Preset {flags.preset!r} for {flags.env_name}: --offline_steps={steps} (the papers' budget there).")


def load_data(flags, env_names):
    """(train, validation, provenance, environments); with --tasks, one copy of the family's data with
    per-task rewards and masks, and one environment per task (the evaluator reuses them)."""
    data_args = (flags.dataset_dir, flags.dataset_path, flags.success_timing, flags.gen_episodes)
    gen_workers = min(2, os.cpu_count() or 1)
    if flags.tasks:
        envs, train_data, val_data, provenance = make_task_envs_and_datasets(
            env_names, *data_args, gen_workers=gen_workers
        )
    else:
        env, train_data, val_data, provenance = make_env_and_datasets(
            flags.env_name, *data_args, gen_workers=gen_workers
        )
        envs = [env]
    check_dataset_matches_env(train_data, envs[0], provenance.get('path') or flags.env_name)
    return train_data, val_data, provenance, envs


def write_records(flags, config, applied, runs, provenance):
    """The run's record: written once, compared on every later command in the same directories.
    Each (task, seed) records what its standalone run would, so either command continues it."""
    run_flags = [flag for flag in flags.get_key_flags_for_module(sys.argv[0]) if flag.name != 'agent']
    record = {flag.name: flag.value for flag in run_flags}
    record['tasks'] = None
    for (env_name, seed), run_dir in zip(runs.pairs, runs.run_dirs, strict=True):
        continues = flags.resume and bool(checkpoint_steps(run_dir))
        check_or_write_record(
            run_dir,
            {**record, 'env_name': env_name, 'seed': seed, 'agent': config.to_dict(), 'preset_applied': applied},
            continues,
            defaults={flag.name: flag.default for flag in run_flags},
        )
        if not continues:
            remove_checkpoints(run_dir)
            write_json(os.path.join(run_dir, 'dataset.json'), provenance)


def first_agents(flags, config, runs, train_data):
    """(agents, data-order keys, step, checkpoint record or None): one agent and key per (task, seed),
    new, restored from another run (--restore_path), or resumed from its run directory."""
    agent_class = AGENTS[config.agent_name]
    ex_observations, ex_actions = example_observations(train_data, flags.frame_stack), train_data['actions'][:1]
    agents = [agent_class.create(seed, ex_observations, ex_actions, config) for seed in runs.seeds]
    keys = [data_key(seed) for seed in runs.seeds]
    if flags.restore_path:
        agents = [
            restore_from(flags.restore_path, flags.restore_epoch, a, k) for a, k in zip(agents, keys, strict=True)
        ]
    resumed = load_common_step(runs.run_dirs, agents, keys)
    if not resumed:
        return agents, keys, 0, None
    step, record = resumed[0][2], resumed[0][3]
    print(f'Resuming from step {step} in {runs.where}')
    check_phase_boundary(step, record.get('online_from'), flags, runs.run_dirs[0])
    return [r[0] for r in resumed], [r[1] for r in resumed], step, record


def open_logs(run_dirs, step):
    """The train and evaluation logs of each run, without rows after `step` (those of a resumed run
    logged after its checkpoint)."""
    train_logs = [CsvLogger(os.path.join(run_dir, 'train.csv')) for run_dir in run_dirs]
    eval_logs = [CsvLogger(os.path.join(run_dir, 'eval.csv')) for run_dir in run_dirs]
    for logger in train_logs + eval_logs:
        logger.truncate_after(step)
    return train_logs, eval_logs


def report_finished(flags, runs, eval_logs, step):
    lengths = f'--offline_steps={flags.offline_steps}' + (
        f', --online_steps={flags.online_steps}' if flags.online_steps else ''
    )
    for label, eval_log in zip(runs.labels, eval_logs, strict=True):
        last = f'; last evaluation: {headline(eval_log.rows[-1])}' if eval_log.rows else ''
        print(f'{label}: already finished at step {step} ({lengths}){last}.')
    print(f'Nothing to train. Logs: {runs.where}')


def start_training(flags, config, runs, state, datasets, logs):
    """Everything the loop uses (`Training`): the evaluator, the jitted functions, the data on the
    device, the logs (and W&B runs), the progress display. A new run saves its step 0 first; a run
    resumed in its online phase gets that phase back."""
    # One environment factory per task, shared by its seeds' agents; in-process evaluation (one worker)
    # starts with the environment the task's data came with instead of building it again.
    task_envs = [
        functools.partial(make_env, env_name, flags.success_timing, frame_stack=flags.frame_stack)
        for env_name in runs.env_names
    ]
    if flags.eval_workers <= 1:
        task_envs = [
            FirstCallReuses(stacked(env, flags.frame_stack), make)
            for env, make in zip(datasets[2], task_envs, strict=True)
        ]
    evaluator = Evaluator(
        [task_envs[task] for task in runs.task_ids], flags.eval_episodes, flags.eval_workers, flags.video_episodes
    )
    # With --tasks, each agent's task index is the train call's fourth argument.
    tasks_arg = (shard_seeds(jax.numpy.asarray(runs.task_ids), len(runs.pairs)),) if flags.tasks else ()
    if state.step == 0:
        state.save(runs.run_dirs)
    data = to_device(datasets[0])
    val_data = to_device(datasets[1]) if datasets[1] is not None else None
    sampling = dict(tasks=bool(flags.tasks), frame_stack=flags.frame_stack, p_aug=flags.p_aug)
    train_fn = make_train_fn(config.batch_size, flags.updates_per_call, len(runs.pairs), **sampling)
    # Chunks that start off the fused grid (step 1, whose evaluation both references make; a
    # resumed step between intervals; the last steps) run as single updates, the same computation.
    single_fn = (
        make_train_fn(config.batch_size, 1, len(runs.pairs), **sampling) if flags.updates_per_call > 1 else train_fn
    )
    validation_fn = make_validation_fn(config.batch_size, **sampling)
    start_online = functools.partial(make_online, flags, config, runs.seeds, data)
    if state.step > flags.offline_steps:
        state.online = start_online()
        device_template = state.online.device_template()
        state.online.restore(
            [load_online_state(checkpoint_path(d, state.step), device_template) for d in runs.run_dirs]
        )
    progress = make_progress(flags, config, runs, state.step)
    return Training(
        flags=flags,
        runs=runs,
        train_fn=train_fn,
        single_fn=single_fn,
        validation_fn=validation_fn,
        data=data,
        val_data=val_data,
        tasks_arg=tasks_arg,
        start_online=start_online,
        evaluator=evaluator,
        train_logs=logs[0],
        eval_logs=logs[1],
        wandb_runs=open_wandb_runs(flags, config, runs),
        progress=progress,
    )


def open_wandb_runs(flags, config, runs):
    """One Weights & Biases run per (task, seed), or none (`--wandb_mode=disabled`)."""
    if flags.wandb_mode == 'disabled':
        return []
    return [
        WandbLogger(
            flags.wandb_mode,
            flags.wandb_project,
            flags.run_group,
            os.path.basename(run_dir),
            {'agent': config.to_dict(), 'env_name': env_name, 'seed': seed},
        )
        for (env_name, seed), run_dir in zip(runs.pairs, runs.run_dirs, strict=True)
    ]


def make_online(flags, config, seeds, data):
    """The online phase: one environment per seed (FQL's AntMaze reward shift, as in the D4RL data)."""
    online_envs = [make_env(flags.env_name, flags.success_timing) for _ in seeds]
    reward_shift = -1.0 if is_d4rl(flags.env_name) and is_antmaze(flags.env_name) else 0.0
    return Online(
        online_envs,
        seeds,
        data,
        config.batch_size,
        flags.buffer_size,
        flags.online_steps,
        flags.balanced_sampling,
        first_step=flags.offline_steps,
        reward_shift=reward_shift,
    )


def make_progress(flags, config, runs, start_step):
    """The progress display, after a line that says what trains from where to where."""
    seed_text = f'seed {flags.seed}' if flags.num_seeds == 1 else f'seeds {flags.seed}-{runs.seeds[-1]}'
    if flags.tasks:
        seed_text = f'tasks {flags.tasks}, {seed_text}'
    total_steps = flags.offline_steps + flags.online_steps
    progress = Progress(f'{config.agent_name} {flags.env_name} {seed_text}', total_steps, start_step)
    online_text = f' (online from step {flags.offline_steps})' if flags.online_steps else ''
    progress.write(
        f'Training {config.agent_name} on {flags.env_name} ({seed_text}) from step {start_step} to '
        f'{total_steps}{online_text}; logs in {runs.run_dirs[0]}'
        + (' and beside it.' if len(runs.run_dirs) > 1 else '.')
    )
    return progress


def train(training, state):
    """Advances `state` by one jitted call: fused updates offline (single ones off the fused grid), or
    online one environment step and one update, whatever --updates_per_call. Returns the call's
    (info, nonfinite)."""
    flags = training.flags
    if state.step < flags.offline_steps:
        on_grid = (
            state.step % flags.updates_per_call == 0 and state.step + flags.updates_per_call <= flags.offline_steps
        )
        chunk = flags.updates_per_call if on_grid and not (flags.eval_interval and state.step == 0) else 1
        update_fn = training.train_fn if chunk > 1 else training.single_fn
        state.agents, state.keys, info, nonfinite = update_fn(
            state.agents, state.keys, training.data, *training.tasks_arg
        )
    else:
        state.online = state.online if state.online is not None else training.start_online()
        chunk, update_fn = 1, state.online.step
        state.agents, state.keys, info, nonfinite = update_fn(state.agents, state.keys)
    state.note_call(update_fn)
    state.step += chunk
    training.progress.update(chunk, timed=state.timed_update())
    return info, nonfinite


def log_training(training, state, info):
    """Each run's row of training metrics, validation losses, online statistics and speed."""
    speed = state.speed()
    rows = {f'training/{k}': v for k, v in jax.device_get(info).items()}
    if training.val_data is not None:
        state.note_call(training.validation_fn)
        validation = training.validation_fn(state.agents, training.val_data, state.keys, *training.tasks_arg)
        rows.update({f'validation/{k}': v for k, v in jax.device_get(validation).items()})
    for i, train_log in enumerate(training.train_logs):
        row = {k: v[i] for k, v in rows.items()}
        if state.online is not None:
            row.update(state.online.log_row(i))
        row.update({'time/steps_per_second': speed, 'time/elapsed': state.elapsed(), 'time/wall_time': time.time()})
        train_log.log(row, state.step)
        if training.wandb_runs:
            training.wandb_runs[i].log(row, state.step)


def evaluate(training, state):
    runs = training.runs
    state.note_call(training.evaluator)  # The first evaluation starts its workers and compiles the policy.
    for i, stats in enumerate(training.evaluator.evaluate(state.agents, runs.seeds, state.step, runs.run_dirs)):
        training.eval_logs[i].log(stats, state.step)
        if training.wandb_runs:
            training.wandb_runs[i].log(stats, state.step)
        training.progress.write(f'step {state.step} {runs.labels[i]}: {headline(stats)}')


def report_final_evaluation(training, state, start_step):
    flags, runs = training.flags, training.runs
    if flags.eval_interval and flags.eval_episodes and state.step > start_step:
        for label, eval_log, run_dir in zip(runs.labels, training.eval_logs, runs.run_dirs, strict=True):
            training.progress.write(
                f'Final evaluation (step {state.step}, {label}, {flags.eval_episodes} episodes): '
                f'{headline(eval_log.rows[-1])}. Took {duration(state.elapsed())}. Logs: {run_dir}'
            )


def agent_config(flags, explicit_keys):
    """The agent config after the environment's preset and the agent's own checks, and the preset values."""
    config = flags.agent
    for key in ('actor_hidden_dims', 'value_hidden_dims'):
        config[key] = tuple(config[key])
    check_preset(flags.preset)
    agent_class = AGENTS[config.agent_name]
    overrides = agent_class.preset_overrides(flags.preset, preset_key(flags.env_name))
    if flags.online_steps:
        overrides.update(agent_class.online_preset_overrides(flags.preset, preset_key(flags.env_name)))
    applied = apply_preset(config, overrides, explicit_keys)
    problems = agent_class.config_problems(config)
    if problems:
        raise UserError('Invalid agent settings:\n  ' + '\n  '.join(problems))
    return config, applied


def check_task_flags(flags):
    """What --tasks cannot be combined with: each online environment and each restored run is one task's."""
    if flags.tasks and flags.online_steps:
        raise UserError('--online_steps trains one task per process; drop --tasks and run each task on its own.')
    if flags.tasks and flags.restore_path:
        raise UserError('--restore_path initialises one task; drop --tasks and restore each task on its own.')


def check_phase_boundary(start_step, online_from, flags, run_dir):
    """A run resumed in its online phase keeps the step where that phase began (--offline_steps);
    a checkpoint of the offline phase cannot continue online from a step past --offline_steps."""
    if online_from is not None and online_from != flags.offline_steps:
        raise UserError(
            f'{run_dir} began its online phase at step {online_from}; continue it with '
            f'--offline_steps={online_from}, or start over with --noresume.'
        )
    if online_from is None and flags.online_steps and start_step > flags.offline_steps:
        raise UserError(
            f'{run_dir} trained offline up to step {start_step}, past --offline_steps={flags.offline_steps}; '
            f'continue it with --offline_steps={start_step} or more, or start over with --noresume.'
        )


def headline(stats):
    """The evaluation numbers a person looks for first."""
    keys = ('evaluation/success', 'evaluation/normalized_return', 'evaluation/episode.return')
    shown = [f'{key.split("/", 1)[1]} {float(stats[key]):.3f}' for key in keys if key in stats]
    return ', '.join(shown[:2])


def stop_if_diverged(nonfinite, step, labels, run_dirs):
    """Stops the run, naming the metric and step, when any metric or parameter is NaN or inf."""
    for i, bad in diverged_seeds(nonfinite).items():
        kept = latest_checkpoint(run_dirs[i])
        kept_text = f'the last good checkpoint is {kept[1]} (step {kept[0]})' if kept else 'no checkpoint was kept'
        raise TrainingDiverged(
            f'Training diverged ({labels[i]}): non-finite {", ".join(bad)} by step {step}; '
            f'{kept_text}. Try a lower --agent.lr, or check the dataset for extreme values.'
        )


def explicit_agent_keys(argv):
    """Agent keys set on the command line; they win over presets."""
    return {arg[len('--agent.') :].split('=', 1)[0] for arg in argv if arg.startswith('--agent.')}


def expand_agent_flag(argv):
    """(`argv` with `--agent=drol` standing for the agent's config file, that config file); unknown
    agents or keys fail with a hint."""
    config_files = {name: agent_class.config_file() for name, agent_class in AGENTS.items()}
    expanded, config_file = [], config_files[DEFAULT_AGENT]
    for i, arg in enumerate(argv):
        if arg.startswith('--agent=') and not arg.endswith('.py'):
            name = arg.split('=', 1)[1]
            check_agent_name(name, config_files)
            arg = f'--agent={config_files[name]}'
        elif arg == '--agent' and i + 1 < len(argv) and not argv[i + 1].endswith('.py'):
            check_agent_name(argv[i + 1], config_files)
            argv[i + 1] = config_files[argv[i + 1]]
        if arg.startswith('--agent='):
            config_file = arg.split('=', 1)[1]
        elif arg == '--agent' and i + 1 < len(argv):
            config_file = argv[i + 1]
        expanded.append(arg)
    keys = [arg[len('--agent.') :].split('=', 1)[0] for arg in expanded if arg.startswith('--agent.')]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:  # ml_collections would concatenate repeated tuple values instead of keeping one.
        raise UserError(f'--agent.{repeated[0]} is given more than once; give each setting once.')
    check_agent_keys(config_file, set(keys))
    return expanded, config_file


def define_agent_flag(argv):
    """Checks the agent flags, then defines `--agent`. ml_collections reads the `--agent.KEY`
    overrides from sys.argv when the flag is defined, so the check and the expansion of
    `--agent=NAME` come first, and sys.argv is updated in place."""
    sys.argv[:], config_file = expand_agent_flag(list(argv))
    config_flags.DEFINE_config_file(
        'agent', AGENTS[DEFAULT_AGENT].config_file(), agent_help(config_file), lock_config=False
    )
    FLAGS['agent'].default_as_str = repr(DEFAULT_AGENT)  # --help names the agent, not its file's absolute path.
    return sys.argv


def agent_help(config_file):
    """The `--agent` help: the agents, then every setting of the chosen one with its default."""
    settings = agent_settings(config_file)
    return '\n'.join(
        [
            f'Agent: {", ".join(AGENTS)}, or a config file path. Settings of {os.path.basename(config_file)}, '
            'each set with --agent.KEY=VALUE (--preset may change some; flags.json records the values used):',
            *(f'--agent.{key}={value}' for key, value in settings.items()),
        ]
    )


def main(_):
    try:
        run(FLAGS, explicit_agent_keys(sys.argv))
    except TrainingDiverged as error:
        print(f'error: {error}', file=sys.stderr)
        sys.exit(3)
    except StopRequested as stop:
        print(stop, file=sys.stderr)
        sys.exit(stop.exit_code)
    except KeyboardInterrupt:
        print('Interrupted before training started; nothing to save.', file=sys.stderr)
        sys.exit(130)


if __name__ == '__main__':
    run_app(main, prepare_argv=define_agent_flag)
