"""Per-environment presets: which settings a preset may write into an agent's config.

Each agent owns its tables (`Agent.preset_overrides(preset, env_key)`); this module only
names the presets and applies them. `paper`: the paper's settings for the environment;
`drol_star`: `paper` plus DROL*'s tuned values; `none`: the agents' own defaults.
A key given as `--agent.KEY=...` always wins.
"""

from utils.errors import UserError

PRESETS = ('paper', 'drol_star', 'none')


def check_preset(preset):
    if preset not in PRESETS:
        raise UserError(f'Unknown --preset={preset!r}; use one of {", ".join(PRESETS)}.')


def apply_preset(config, overrides, explicit_keys):
    """Writes `overrides` into `config` except keys set explicitly; returns what was applied."""
    applied = {key: value for key, value in overrides.items() if key not in explicit_keys and key in config}
    config.update(applied)
    return applied
