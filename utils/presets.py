"""Per-environment presets: which settings a preset may write into an agent's config.

Each agent owns its tables (`Agent.preset_overrides(preset, env_key)`); this module only
names the presets and applies them. `paper`: the paper's settings for the environment;
`drol_star`: `paper` plus DROL*'s tuned values; `none`: the agents' own defaults.
A key given as `--agent.KEY=...` always wins.

The presets also set the run's length where the papers' budget is not main.py's default of 1M
offline steps: the FQL paper trains D4RL and pixel-based tasks for 500K (its Appendix E.2), unless
`--offline_steps` is given.
"""

from utils.errors import UserError

PRESETS = ('paper', 'drol_star', 'none')
SHORT_BUDGET_STEPS = 500_000  # The FQL paper's offline steps on D4RL and pixel-based tasks.


def check_preset(preset):
    if preset not in PRESETS:
        raise UserError(f'Unknown --preset={preset!r}; use one of {", ".join(PRESETS)}.')


def apply_preset(config, overrides, explicit_keys):
    """Writes `overrides` into `config` except keys set explicitly; returns what was applied."""
    applied = {key: value for key, value in overrides.items() if key not in explicit_keys and key in config}
    config.update(applied)
    return applied


def preset_offline_steps(preset, short_budget):
    """The offline steps `preset` gives a run without --offline_steps: the papers' 500K on a task
    with a short budget (D4RL, pixel-based), None (the flag's default, 1M) otherwise and under 'none'."""
    return SHORT_BUDGET_STEPS if short_budget and preset != 'none' else None
