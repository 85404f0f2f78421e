"""Per-environment settings from the papers (../shared/DROL_SPEC.md), applied by default.

`paper`: DROL bc_coef, FQL alpha, and the family's discount / q_agg (applied to both
agents, so that a side-by-side comparison shares its environment settings).
`drol_star`: `paper` plus DROL's tuned K (and bc_coef 0.03 on D4RL AntMaze large).
`none`: the agents' own defaults. A key given as `--agent.KEY=...` always wins.
"""

from utils.errors import UserError

PRESETS = ('paper', 'drol_star', 'none')

# OGBench family -> (DROL bc_coef, FQL alpha, shared settings, DROL tuned K).
OGBENCH = {
    'antmaze-large-navigate': (0.03, 10.0, {'discount': 0.995, 'q_agg': 'min'}, 16),
    'antmaze-giant-navigate': (0.03, 10.0, {'discount': 0.995, 'q_agg': 'min'}, 1),
    'humanoidmaze-medium-navigate': (0.3, 30.0, {'discount': 0.995}, 16),
    'humanoidmaze-large-navigate': (0.3, 30.0, {'discount': 0.995}, 4),
    'antsoccer-arena-navigate': (0.1, 10.0, {'discount': 0.995}, 4),
    'cube-single-play': (10.0, 300.0, {}, 16),
    'cube-double-play': (3.0, 300.0, {}, 64),
    'scene-play': (3.0, 300.0, {}, 64),
    'puzzle-3x3-play': (0.3, 1000.0, {}, 32),
    'puzzle-4x4-play': (10.0, 1000.0, {}, 64),
}

# D4RL dataset -> (DROL bc_coef, shared settings, DROL tuned bc_coef or None).
_ANTMAZE = {
    'antmaze-umaze-v2': (0.3, None),
    'antmaze-umaze-diverse-v2': (0.1, None),
    'antmaze-medium-play-v2': (0.1, None),
    'antmaze-medium-diverse-v2': (0.1, None),
    'antmaze-large-play-v2': (0.1, 0.03),
    'antmaze-large-diverse-v2': (0.1, 0.03),
}
_ADROIT_BC = {'pen': 1.0, 'door': 10.0, 'hammer': 3.0, 'relocate': 10.0}
D4RL = {name: (bc, {}, tuned) for name, (bc, tuned) in _ANTMAZE.items()}
D4RL.update({
    f'{task}-{kind}-v1': (bc, {'q_agg': 'min'}, None)
    for task, bc in _ADROIT_BC.items() for kind in ('human', 'cloned', 'expert')
})


def preset_overrides(preset, agent_name, family_or_d4rl_name):
    """The settings a preset gives this agent in this environment (empty if none are known)."""
    if preset not in PRESETS:
        raise UserError(f'Unknown --preset={preset!r}; use one of {", ".join(PRESETS)}.')
    if preset == 'none':
        return {}
    overrides = {}
    if family_or_d4rl_name in OGBENCH:
        bc_coef, alpha, shared, tuned_k = OGBENCH[family_or_d4rl_name]
        overrides.update(shared)
        if agent_name == 'drol':
            overrides['bc_coef'] = bc_coef
            if preset == 'drol_star':
                overrides['num_candidates'] = tuned_k
        elif agent_name == 'fql':
            overrides['alpha'] = alpha
    elif family_or_d4rl_name in D4RL:
        bc_coef, shared, tuned_bc = D4RL[family_or_d4rl_name]
        overrides.update(shared)
        if agent_name == 'drol':
            overrides['bc_coef'] = tuned_bc if (preset == 'drol_star' and tuned_bc) else bc_coef
    return overrides


def apply_preset(config, overrides, explicit_keys):
    """Writes `overrides` into `config` except keys set explicitly; returns what was applied."""
    applied = {key: value for key, value in overrides.items() if key not in explicit_keys and key in config}
    config.update(applied)
    return applied
