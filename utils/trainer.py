"""The training run behind main.py: checks, data, agents, the fused loop, logs and checkpoints."""

import os
import sys
import time

import jax
import numpy as np
import tqdm

from agents import AGENTS
from envs.env_utils import canonical_env_name, is_d4rl, make_env_and_datasets
from envs.ogbench_names import parse_ogbench_name
from utils.checkpoints import checkpoint_path, latest_checkpoint, load_checkpoint, remove_checkpoints, save_checkpoint
from utils.config_checks import check_run_flags
from utils.datasets import to_device, sample_batch
from utils.errors import UserError
from utils.eval_pool import EvalPool
from utils.evaluation import run_episodes, summarize
from utils.log_utils import CsvLogger, WandbLogger
from utils.presets import apply_preset, check_preset
from utils.run_dirs import prepare_run_dir, run_dir_for, write_json
from utils.training import data_key, make_train_fn, shard_seeds, stack_seeds, unstack_seed
from utils.video import save_gif


class TrainingDiverged(Exception):
    """A loss or parameter became NaN or inf; the last good checkpoint is kept."""


def prepare_config(flags, explicit_keys):
    """The agent config after presets and checks, and the preset values applied."""
    config = flags.agent
    for key in ('actor_hidden_dims', 'value_hidden_dims'):
        config[key] = tuple(config[key])
    env_name = canonical_env_name(flags.env_name)
    lookup = env_name if is_d4rl(env_name) else parse_ogbench_name(env_name)[0]
    check_preset(flags.preset)
    agent_class = AGENTS[config.agent_name]
    applied = apply_preset(config, agent_class.preset_overrides(flags.preset, lookup), explicit_keys)
    problems = agent_class.config_problems(config)
    if problems:
        raise UserError('Invalid agent settings:\n  ' + '\n  '.join(problems))
    return config, applied


def run(flags, explicit_keys=frozenset()):
    """Trains `flags.num_seeds` seeds of one agent; returns the final (stacked) agents."""
    check_run_flags(flags)
    config, applied = prepare_config(flags, explicit_keys)
    if applied:
        print(f'Preset {flags.preset!r} for {flags.env_name}: {applied} (override with --agent.KEY=...)')
    seeds = list(range(flags.seed, flags.seed + flags.num_seeds))
    run_dirs = [prepare_run_dir(run_dir_for(flags.save_dir, flags.run_group, config.agent_name, flags.env_name, s))
                for s in seeds]

    env, train_data, val_data, provenance = make_env_and_datasets(
        flags.env_name, flags.dataset_dir, flags.dataset_path, flags.success_timing, flags.gen_episodes,
        gen_workers=min(2, os.cpu_count() or 1))
    check_dataset_matches_env(train_data, env, provenance.get('path') or flags.env_name)
    for seed, run_dir in zip(seeds, run_dirs):
        record = {flag.name: flag.value for flag in flags.get_key_flags_for_module(sys.argv[0]) if flag.name != 'agent'}
        write_json(os.path.join(run_dir, 'flags.json'),
                   {**record, 'seed': seed, 'agent': config.to_dict(), 'preset_applied': applied})
        write_json(os.path.join(run_dir, 'dataset.json'), provenance)

    agent_class = AGENTS[config.agent_name]
    ex_observations, ex_actions = train_data['observations'][:1], train_data['actions'][:1]
    agents = [agent_class.create(s, ex_observations, ex_actions, config) for s in seeds]
    keys = [data_key(s) for s in seeds]
    if flags.restore_path:
        agents = [restore_agent(flags.restore_path, flags.restore_epoch, a, k) for a, k in zip(agents, keys)]

    start_step = 0
    if not flags.resume:
        for d in run_dirs:
            remove_checkpoints(d)
    resumable = [latest_checkpoint(d) for d in run_dirs]
    if all(resumable):
        start_step = min(step for step, _ in resumable)
        restored = [load_checkpoint(checkpoint_path(d, start_step), a, k) for d, a, k in zip(run_dirs, agents, keys)]
        agents, keys = [r[0] for r in restored], [r[1] for r in restored]
        print(f'Resuming from step {start_step} in {run_dirs[0]}' + (' and others' if len(run_dirs) > 1 else ''))
    train_logs = [CsvLogger(os.path.join(d, 'train.csv')) for d in run_dirs]
    eval_logs = [CsvLogger(os.path.join(d, 'eval.csv')) for d in run_dirs]
    for logger in train_logs + eval_logs:
        logger.truncate_after(start_step)
    if start_step == 0:
        for d, a, k in zip(run_dirs, agents, keys):
            save_checkpoint(d, 0, a, k)
    wandb_runs = [WandbLogger(flags.wandb_mode, flags.wandb_project, flags.run_group, os.path.basename(d),
                              {'agent': config.to_dict(), 'env_name': flags.env_name, 'seed': s})
                  for s, d in zip(seeds, run_dirs)] if flags.wandb_mode != 'disabled' else []

    evaluator = Evaluator(flags, config, env, ex_observations, ex_actions)
    stacked = shard_seeds(stack_seeds(agents), len(seeds))
    stacked_keys = shard_seeds(stack_seeds(keys), len(seeds))
    data = to_device(train_data)
    val_device = to_device(val_data) if val_data is not None else None
    train_fn = make_train_fn(config.batch_size, flags.updates_per_call, len(seeds))
    # Both references also evaluate after the first update; with fused updates, the first chunk
    # then runs as single updates (the same computation as one fused chunk).
    single_fn = make_train_fn(config.batch_size, 1, len(seeds)) if flags.updates_per_call > 1 else train_fn
    val_fn = jax.jit(jax.vmap(validation_info, in_axes=(0, None, None, 0)), static_argnums=(2,))

    step, last_log_time, last_log_step = start_step, time.time(), start_step
    try:
        with tqdm.tqdm(total=flags.offline_steps, initial=start_step, smoothing=0.1, dynamic_ncols=True,
                       disable=None) as bar:
            while step < flags.offline_steps:
                if step < flags.updates_per_call and flags.eval_interval:
                    stacked, stacked_keys, info, nonfinite = single_fn(stacked, stacked_keys, data)
                    step += 1
                    bar.update(1)
                else:
                    stacked, stacked_keys, info, nonfinite = train_fn(stacked, stacked_keys, data)
                    step += flags.updates_per_call
                    bar.update(flags.updates_per_call)
                guard_divergence(jax.device_get(nonfinite), step, seeds, run_dirs)

                if step % flags.log_interval == 0 or step == flags.offline_steps:
                    now = time.time()
                    rows = {f'training/{k}': v for k, v in jax.device_get(info).items()}
                    if val_device is not None:
                        val = jax.device_get(val_fn(stacked, val_device, config.batch_size, stacked_keys))
                        rows.update({f'validation/{k}': v for k, v in val.items()})
                    speed = (step - last_log_step) / max(now - last_log_time, 1e-9)
                    for i in range(len(seeds)):
                        row = {k: v[i] for k, v in rows.items()}
                        row.update({'time/steps_per_second': speed, 'time/wall_time': now})
                        train_logs[i].log(row, step)
                        if wandb_runs:
                            wandb_runs[i].log(row, step)
                    last_log_time, last_log_step = now, step

                if flags.eval_interval and (step == 1 or step % flags.eval_interval == 0 or step == flags.offline_steps):
                    for i, seed in enumerate(seeds):
                        stats = evaluator.evaluate(unstack_seed(stacked, i), seed, step, run_dirs[i])
                        eval_logs[i].log(stats, step)
                        if wandb_runs:
                            wandb_runs[i].log(stats, step)
                        bar.write(f'step {step} seed {seed}: ' + ', '.join(
                            f'{k.split("/")[-1]}={v:.3f}' for k, v in stats.items()
                            if k in ('evaluation/success', 'evaluation/normalized_return', 'evaluation/episode.return')))

                if (flags.save_interval and step % flags.save_interval == 0) or step == flags.offline_steps:
                    for i, d in enumerate(run_dirs):
                        save_checkpoint(d, step, unstack_seed(stacked, i), unstack_seed(stacked_keys, i))
        if flags.eval_interval and flags.eval_episodes and step > start_step:
            for i, seed in enumerate(seeds):
                final = eval_logs[i].rows[-1]
                summary = ', '.join(f'{k.split("/", 1)[1]} {float(v):.3f}' for k, v in final.items()
                                    if k in ('evaluation/success', 'evaluation/normalized_return'))
                print(f'Final evaluation (step {step}, seed {seed}, {flags.eval_episodes} episodes): '
                      f'{summary or "return " + str(final["evaluation/episode.return"])}. Logs: {run_dirs[i]}')
    finally:
        evaluator.close()
        for wandb_run in wandb_runs:
            wandb_run.finish()
    return stacked


def validation_info(agent, val_data, batch_size, key):
    """Losses of the current parameters on a validation batch (no update)."""
    batch = sample_batch(val_data, jax.random.fold_in(key, 1), batch_size)
    _, info = agent.total_loss(batch, agent.network.params, rng=jax.random.fold_in(key, 2))
    return info


def guard_divergence(nonfinite, step, seeds, run_dirs):
    """Stops the run, naming the metric and step, when any metric or parameter is NaN or inf."""
    for i, seed in enumerate(seeds):
        bad = sorted(name for name, flag in nonfinite.items() if bool(np.asarray(flag)[i]))
        if bad:
            kept = latest_checkpoint(run_dirs[i])
            kept_text = f'the last good checkpoint is {kept[1]} (step {kept[0]})' if kept else 'no checkpoint was kept'
            raise TrainingDiverged(
                f'Training diverged (seed {seed}): non-finite {", ".join(bad)} by step {step}; '
                f'{kept_text}. Try a lower --agent.lr, or check the dataset for extreme values.')


def check_dataset_matches_env(dataset, env, source):
    """Observation and action sizes of the dataset against the environment's spaces."""
    observation_dim = env.observation_space.shape[-1]
    action_dim = env.action_space.shape[-1]
    if dataset['observations'].shape[-1] != observation_dim or dataset['actions'].shape[-1] != action_dim:
        raise UserError(
            f'Dataset {source} has {dataset["observations"].shape[-1]}-dim observations and '
            f'{dataset["actions"].shape[-1]}-dim actions, but the environment expects {observation_dim} and '
            f'{action_dim}. Is it the dataset of another environment?')


def restore_agent(restore_path, restore_epoch, agent, key):
    """The agent stored in another run's checkpoint (`--restore_path`, `--restore_epoch`)."""
    if restore_epoch is None:
        found = latest_checkpoint(restore_path)
        if found is None:
            raise UserError(f'No checkpoint in --restore_path={restore_path}.')
        path = found[1]
    else:
        path = checkpoint_path(restore_path, restore_epoch)
    if not os.path.exists(path):
        raise UserError(f'No checkpoint {path} (check --restore_path and --restore_epoch).')
    return load_checkpoint(path, agent, key)[0]


class Evaluator:
    """Serial or multi-process evaluation, plus optional GIF videos."""

    def __init__(self, flags, config, env, ex_observations, ex_actions):
        self.flags, self.env = flags, env
        self.pool = None
        if flags.eval_workers > 1 and flags.eval_interval and flags.eval_episodes:
            self.pool = EvalPool(flags.eval_workers, flags.env_name, flags.success_timing, config.agent_name,
                                 config, ex_observations, ex_actions)

    def evaluate(self, agent, seed, step, run_dir):
        if self.pool is not None:
            episodes = self.pool.run_episodes(agent, self.flags.eval_episodes, seed)
        else:
            episodes, _ = run_episodes(agent, self.env, self.flags.eval_episodes, seed)
        stats = {f'evaluation/{k}': v for k, v in summarize(episodes).items()}
        if self.flags.video_episodes:
            _, videos = run_episodes(agent, self.video_env(), self.flags.video_episodes, seed + 1, render=True)
            save_gif([frame for frames in videos for frame in frames],
                     os.path.join(run_dir, 'videos', f'step_{step}.gif'))
        return stats

    def video_env(self):
        if not hasattr(self, '_video_env'):
            from envs.env_utils import make_env

            self._video_env = make_env(self.flags.env_name, self.flags.success_timing, render_mode='rgb_array')
        return self._video_env

    def close(self):
        if self.pool is not None:
            self.pool.close()
