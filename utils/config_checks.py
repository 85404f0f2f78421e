"""Checks of flags and agent settings, run before anything is compiled.

Each problem becomes one `UserError` sentence, so a typo costs a second, not a traceback
after minutes of JIT compilation.
"""

import os

from utils.errors import UserError, closest


def check_agent_name(name, known):
    if name not in known:
        raise UserError(f'Unknown agent {name!r}.{closest(name, known)} Known agents: {", ".join(sorted(known))}.')


def agent_settings(config_file):
    """The settings (`get_config()`) of an agent config file."""
    import importlib.util

    if not os.path.exists(config_file):
        raise UserError(f'Agent config file {config_file} does not exist.')
    spec = importlib.util.spec_from_file_location('agent_config', config_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def check_agent_keys(config_file, keys):
    """Every `--agent.KEY` names a setting of the agent's config file."""
    known = agent_settings(config_file).keys()
    unknown = sorted(set(keys) - set(known))
    if unknown:
        hints = ' '.join(f'{key!r}:{closest(key, known) or " no close match."}' for key in unknown)
        raise UserError(
            f'Unknown agent setting(s) {", ".join(unknown)}. {hints}\n'
            f'Settings of {os.path.basename(config_file)}: {", ".join(sorted(known))}.'
        )


def check_run_flags(flags):
    """Impossible run lengths and intervals."""
    problems = []
    for name in ('offline_steps', 'online_steps'):
        if getattr(flags, name) < 0:
            problems.append(f'--{name} must not be negative (got {getattr(flags, name)}).')
    if flags.buffer_size < 1:
        problems.append(f'--buffer_size must be at least 1 (got {flags.buffer_size}).')
    if flags.log_interval < 1:
        problems.append(f'--log_interval must be at least 1 (got {flags.log_interval}).')
    for name in ('eval_interval', 'save_interval', 'eval_episodes', 'video_episodes'):
        if getattr(flags, name) < 0:
            problems.append(f'--{name} must not be negative (got {getattr(flags, name)}).')
    if flags.seed < 0:
        problems.append(f'--seed must not be negative (got {flags.seed}).')
    if flags.save_minutes <= 0:
        problems.append(f'--save_minutes must be positive (got {flags.save_minutes}).')
    if flags.num_seeds < 1:
        problems.append(f'--num_seeds must be at least 1 (got {flags.num_seeds}).')
    if flags.eval_workers < 1:
        problems.append(f'--eval_workers must be at least 1 (got {flags.eval_workers}).')
    if flags.updates_per_call < 1:
        problems.append(f'--updates_per_call must be at least 1 (got {flags.updates_per_call}).')
    else:  # The online phase makes one update per environment step, whatever --updates_per_call.
        for name in ('offline_steps', 'log_interval', 'eval_interval', 'save_interval'):
            value = getattr(flags, name)
            if value > 0 and value % flags.updates_per_call:
                problems.append(f'--{name}={value} is not a multiple of --updates_per_call={flags.updates_per_call}.')
    if problems:
        raise UserError('Invalid flags:\n  ' + '\n  '.join(problems))


def check_pixel_flags(flags, encoder, visual):
    """Pixel settings that cannot work, found before any data is loaded: an image encoder needs a
    pixel-based task and a pixel-based task needs one; frame stacking and augmentation act on the
    images an encoder reads; the online phase is state-based."""
    problems = []
    if encoder is not None and not visual:
        problems.append(
            f'--agent.encoder={encoder} reads images, but {flags.env_name} has state observations: drop '
            '--agent.encoder, or train on the visual- task.'
        )
    if encoder is None and visual:
        problems.append(
            f'{flags.env_name} has image observations: choose an encoder, e.g. --agent.encoder=impala_small '
            '(the FQL paper adds --p_aug=0.5 --frame_stack=3).'
        )
    for name in ('frame_stack', 'p_aug'):
        if getattr(flags, name) is not None and encoder is None and not visual:
            problems.append(f'--{name} acts on images and needs a visual- task with --agent.encoder.')
    if flags.frame_stack is not None and flags.frame_stack < 1:
        problems.append(f'--frame_stack must be at least 1 (got {flags.frame_stack}).')
    if flags.p_aug is not None and not 0 <= flags.p_aug <= 1:
        problems.append(f'--p_aug is a probability and must lie in [0, 1] (got {flags.p_aug}).')
    if encoder is not None and flags.online_steps:
        problems.append('--online_steps is not available with --agent.encoder: pixel-based runs are offline only.')
    if problems:
        raise UserError(problems[0] if len(problems) == 1 else 'Invalid flags:\n  ' + '\n  '.join(problems))
