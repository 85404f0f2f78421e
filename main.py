"""Trains and evaluates DROL or FQL offline: `python main.py --agent=drol --env_name=cube-double-play`.

Flags follow the FQL codebase; `--agent=drol|fql` (or a config file path) with
`--agent.KEY=VALUE` overrides. Each seed writes flags.json, dataset.json, train.csv,
eval.csv and checkpoints into `<save_dir>/<run_group>/<agent>_<env_name>_sd<seed>/`;
rerunning the same command continues from the latest checkpoint there.
"""

import sys
import warnings

from absl import app, flags, logging
from ml_collections import config_flags

from agents import CONFIG_FILES

# Known-harmless noise from the simulators on headless machines; real warnings still show.
warnings.filterwarnings('ignore', message='.*precision lowered by casting.*')
warnings.filterwarnings('ignore', module='glfw')
logging.set_verbosity(logging.WARNING)

FLAGS = flags.FLAGS

flags.DEFINE_string('run_group', 'Debug', 'Run group: the folder under save_dir holding this run.')
flags.DEFINE_integer('seed', 0, 'Random seed (the first one, with --num_seeds).')
flags.DEFINE_string('env_name', 'cube-double-play', 'OGBench name (short or full) or D4RL name.')
flags.DEFINE_string('save_dir', 'exp/', 'Where run directories are created.')
flags.DEFINE_string('restore_path', None, 'Run directory whose checkpoint initialises the agent.')
flags.DEFINE_integer('restore_epoch', None, 'Step of the checkpoint in --restore_path (default: latest).')

flags.DEFINE_integer('offline_steps', 1000000, 'Number of offline gradient steps.')
flags.DEFINE_integer('log_interval', 5000, 'Training-metrics logging interval (steps).')
flags.DEFINE_integer('eval_interval', 100000, 'Evaluation interval (steps); 0 disables evaluation.')
flags.DEFINE_integer('save_interval', 100000, 'Checkpoint interval (steps); the final step is always saved.')
flags.DEFINE_integer('eval_episodes', 50, 'Episodes per evaluation.')
flags.DEFINE_integer('video_episodes', 0, 'Extra evaluation episodes rendered to a GIF in the run directory.')
flags.DEFINE_bool('resume', True, 'Continue from the latest checkpoint in the run directory if there is one.')

flags.DEFINE_string('dataset_dir', '~/.ogbench/data', 'Folder holding OGBench datasets.')
flags.DEFINE_string('dataset_path', None, 'Explicit dataset file (OGBench .npz or D4RL .hdf5).')
flags.DEFINE_enum('success_timing', 'post', ['pre', 'post'],
                  "OGBench single-task success on s' ('post', as in ogbench 1.1.0 and the papers) or s ('pre').")
flags.DEFINE_integer('gen_episodes', 100, 'Episodes to generate when an OGBench dataset cannot be downloaded.')

flags.DEFINE_integer('updates_per_call', 1, 'Updates fused into one jitted call (lax.scan).')
flags.DEFINE_integer('num_seeds', 1, 'Independent seeds trained together in this process (vmap).')
flags.DEFINE_integer('eval_workers', 1, 'Processes sharing the evaluation episodes.')
flags.DEFINE_string('preset', 'paper', "Per-environment settings: 'paper', 'drol_star' (paper + tuned K) or 'none'.")

flags.DEFINE_enum('wandb_mode', 'disabled', ['disabled', 'online', 'offline'], 'Weights & Biases logging.')
flags.DEFINE_string('wandb_project', 'drol', 'Weights & Biases project.')

config_flags.DEFINE_config_file('agent', CONFIG_FILES['drol'], 'Agent: drol, fql, or a config file path.',
                                lock_config=False)


def expand_agent_flag(argv):
    """Lets `--agent=drol` stand for the agent's config file; unknown agents or keys fail with a hint."""
    from utils.config_checks import check_agent_keys, check_agent_name

    expanded, config_file = [], CONFIG_FILES['drol']
    for i, arg in enumerate(argv):
        if arg.startswith('--agent=') and not arg.endswith('.py'):
            name = arg.split('=', 1)[1]
            check_agent_name(name, CONFIG_FILES)
            arg = f'--agent={CONFIG_FILES[name]}'
        elif arg == '--agent' and i + 1 < len(argv) and not argv[i + 1].endswith('.py'):
            check_agent_name(argv[i + 1], CONFIG_FILES)
            argv[i + 1] = CONFIG_FILES[argv[i + 1]]
        if arg.startswith('--agent='):
            config_file = arg.split('=', 1)[1]
        elif arg == '--agent' and i + 1 < len(argv):
            config_file = argv[i + 1]
        expanded.append(arg)
    check_agent_keys(config_file, explicit_agent_keys(expanded))
    return expanded


def main(_):
    from utils.trainer import TrainingDiverged, run
    from utils.errors import UserError

    try:
        run(FLAGS, explicit_agent_keys(sys.argv))
    except UserError as error:
        print(f'error: {error}', file=sys.stderr)
        sys.exit(2)
    except TrainingDiverged as error:
        print(f'error: {error}', file=sys.stderr)
        sys.exit(3)


def explicit_agent_keys(argv):
    """Agent keys set on the command line; they win over presets."""
    keys = set()
    for arg in argv:
        if arg.startswith('--agent.'):
            keys.add(arg[len('--agent.'):].split('=', 1)[0])
    return keys


if __name__ == '__main__':
    from utils.errors import UserError

    try:
        sys.argv = expand_agent_flag(sys.argv)
    except UserError as error:
        print(f'error: {error}', file=sys.stderr)
        sys.exit(2)
    app.run(main)
