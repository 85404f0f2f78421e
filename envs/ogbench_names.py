"""OGBench single-task names: short forms, full forms, and the known families.

`cube-double-play` -> `cube-double-play-singletask-v0`;
`cube-double-play-task3` -> `cube-double-play-singletask-task3-v0`; full names pass through.
"""

import re

from utils.errors import UserError, closest
from utils.ranges import parse_ints

_DATASET_TYPES = {
    **{f'pointmaze-{m}': ('navigate', 'stitch') for m in ('medium', 'large', 'giant', 'teleport')},
    **{f'antmaze-{m}': ('navigate', 'stitch', 'explore') for m in ('medium', 'large', 'giant', 'teleport')},
    **{f'humanoidmaze-{m}': ('navigate', 'stitch') for m in ('medium', 'large', 'giant')},
    **{f'antsoccer-{m}': ('navigate', 'stitch') for m in ('arena', 'medium')},
    **{f'cube-{m}': ('play', 'noisy') for m in ('single', 'double', 'triple', 'quadruple')},
    'scene': ('play', 'noisy'),
    **{f'puzzle-{m}': ('play', 'noisy') for m in ('3x3', '4x4', '4x5', '4x6')},
}
# OGBench's pixel-based counterparts: 64 x 64 x 3 uint8 frames instead of state vectors, same datasets otherwise
# (no visual point mazes or soccer).
_DATASET_TYPES.update(
    {f'visual-{env}': kinds for env, kinds in _DATASET_TYPES.items() if not env.startswith(('pointmaze', 'antsoccer'))}
)

# Dataset families such as 'cube-double-play' (environment + dataset type).
FAMILIES = tuple(f'{env}-{kind}' for env, kinds in _DATASET_TYPES.items() for kind in kinds)
# The ten families of the FQL and DROL papers' OGBench tables.
PAPER_FAMILIES = (
    'antmaze-large-navigate', 'antmaze-giant-navigate', 'humanoidmaze-medium-navigate',
    'humanoidmaze-large-navigate', 'antsoccer-arena-navigate', 'cube-single-play', 'cube-double-play',
    'scene-play', 'puzzle-3x3-play', 'puzzle-4x4-play',
)  # fmt: skip
LOCOMOTION_PREFIXES = ('pointmaze', 'antmaze', 'humanoidmaze', 'antsoccer', 'visual-antmaze', 'visual-humanoidmaze')
# Environments whose datasets OGBench's scripted oracles (shipped in `ogbench`) can generate: envs/generate_dataset.py.
# The visual ones render every step (envs/rendering.py says what that costs).
STATE_GENERATABLE_FAMILIES = ('cube-single', 'cube-double', 'cube-triple', 'scene', 'puzzle-3x3', 'puzzle-4x4')
GENERATABLE_FAMILIES = STATE_GENERATABLE_FAMILIES + tuple(f'visual-{family}' for family in STATE_GENERATABLE_FAMILIES)
VISUAL_PREFIX = 'visual-'


def is_visual(name):
    """Whether an OGBench environment, family or dataset name is a pixel-based one (observations are images)."""
    return name.startswith(VISUAL_PREFIX)


_NAME = re.compile(r'^(?P<family>.+?)(?:-singletask)?(?:-task(?P<task>\d+))?(?:-v0)?$')


def parse_ogbench_name(name):
    """(family, task or None) of an OGBench single-task name, short or full; None if not OGBench."""
    match = _NAME.match(name)
    if match is None or match.group('family') not in FAMILIES:
        return None
    task = match.group('task')
    if task is not None and not 1 <= int(task) <= 5:
        raise UserError(f'{name!r}: OGBench single-task environments have tasks 1 to 5.')
    return match.group('family'), (int(task) if task else None)


def full_name(family, task):
    """The single-task environment name OGBench expects."""
    return f'{family}-singletask-v0' if task is None else f'{family}-singletask-task{task}-v0'


def unknown_name_error(name, other_names=()):
    """A UserError for an unknown environment, with the closest names and the families."""
    hint = closest(name, list(FAMILIES) + list(other_names))
    return UserError(
        f'Unknown environment {name!r}.{hint}\n'
        f'OGBench families (append -taskN for task N of 5): {", ".join(FAMILIES)}.\n'
        f'D4RL names: {", ".join(other_names)}.'
    )


def task_names(env_name, tasks_text):
    """The short names of the tasks `--tasks` picks from a family: ('cube-single-play', '1-2') ->
    ['cube-single-play-task1', 'cube-single-play-task2']; a UserError for anything else."""
    parsed = parse_ogbench_name(env_name)
    if parsed is None or parsed[1] is not None or env_name.endswith('singletask-v0'):
        raise UserError(
            f'--tasks trains several tasks of one OGBench family: give the family as --env_name '
            f'(e.g. cube-single-play), not {env_name!r}.'
        )
    tasks = parse_ints(tasks_text, '--tasks')
    outside = [task for task in tasks if not 1 <= task <= 5]
    if outside:
        raise UserError(f'--tasks={tasks_text!r}: OGBench single-task environments have tasks 1 to 5.')
    return [f'{parsed[0]}-task{task}' for task in tasks]
