"""Makes the golden fixtures tests/fixtures/golden_<case>.npz from the public reference code.

What it does: runs the public reference implementations -- the official FQL code
(github.com/seohongpark/fql: agents/fql.py and its baselines agents/iql.py, ifql.py, rebrac.py,
sac.py) and the DROL authors' code (github.com/muzhancun/DROL, agents/drol.py) -- on small
fixed inputs (obs dim 11, action dim 5, batch 64, ten fixed numpy batches, small MLPs) and
stores the numbers they produce: the starting parameters (every target network deliberately
perturbed away from its source), the first loss, its metrics and its gradients, the metrics of
ten `update` calls, the parameters after one and after ten updates, and `sample_actions` outputs.
Only numbers are taken from the references: their modules are imported at run time from the checkout paths given on
the command line, nothing of theirs is copied into this project, and nothing of this
project is imported while a reference runs (both have top-level packages named `agents`
and `utils`, so each reference repository runs in its own subprocess: this file re-invokes
itself with the hidden `--worker=fql|drol --repo=PATH` mode, which puts the checkout first on
sys.path and changes into it).

How to run it (CPU, float32, deterministic XLA flags are set by the script; a few minutes):

    python scripts/make_golden_fixtures.py \\
        --fql_repo=PATH/TO/seohongpark/fql --drol_repo=PATH/TO/muzhancun/DROL \\
        [--out=tests/fixtures] [--cases=drol_default,fql_default]

(only the repositories of the chosen cases are needed: `--cases=iql_default` needs only --fql_repo.)

It also rewrites tests/fixtures/README.md (cases, keys, reference commits, command, sizes).

How much the references move between machines and builds, which the tests' tolerances are
derived from: regenerate into another folder (on another machine, jaxlib or XLA_FLAGS) and compare:

    python scripts/make_golden_fixtures.py --fql_repo=... --drol_repo=... --out=/tmp/regenerated
    python scripts/make_golden_fixtures.py --drift=/tmp/regenerated [--out=tests/fixtures]

This is a developer tool: it never runs in CI (it refuses to when the CI environment variable
is set) and the tests only read the .npz files it wrote. Regenerate the fixtures only when
the references (their commits) or the cases defined below change.
"""

import argparse
import glob
import json
import os
import subprocess
import sys

import numpy as np

OBS_DIM = 11
ACTION_DIM = 5
BATCH_SIZE = 64
NUM_BATCHES = 10
BATCH_SEED = 0
TARGET_NOISE_SEED = 1
NEXT_ACTION_SEED = 2  # Own generator, so the batches of the cases without next actions are unchanged.
TARGET_NOISE_SCALE = 0.05
ACTION_SEED = 7
NUM_ACTION_OBS = 8
AGENT_SEED = 0
HIDDEN_DEFAULT = (64, 64)
HIDDEN_VARIANT = (32, 32)  # Non-default variants use smaller nets to keep the fixtures small.
# Pixel cases (an `encoder` among their overrides): uint8 images of this shape (odd sides, so that the
# encoder's 'SAME' max pooling pads), smaller batches and nets to keep the files small.
IMAGE_SHAPE = (7, 7, 6)
PIXEL_BATCH_SIZE = 16
HIDDEN_PIXELS = (8, 8)
PIXELS = dict(encoder='impala_debug')
# The frame-stacking and random-crop fixture (tests/fixtures/frames_reference.npz), from the FQL
# codebase's utils/datasets.py: episodes of these lengths, FRAME_SHAPE frames, stacks of 1 to 4.
FRAMES_CASE = 'frames'
EPISODE_LENGTHS = (1, 4, 2, 6)
FRAME_SHAPE = (2, 3, 2)
FRAME_STACKS = (1, 2, 3, 4)
CROP_IMAGES = (16, 8, 9, 3)

XLA_FLAGS = '--xla_cpu_multi_thread_eigen=false --xla_cpu_enable_fast_math=false --xla_gpu_deterministic_ops=true'

# name -> (reference, overrides of the reference get_config(), hidden dims, inference only, description)
CASES = {
    'drol_default': (
        'drol',
        {},
        HIDDEN_DEFAULT,
        False,
        'DROL reference defaults (actor_q_agg min, normalize_q_loss, K=16, q_agg mean, critic_num_candidates 1).',
    ),
    'drol_mean_nonorm': (
        'drol',
        dict(actor_q_agg='mean', normalize_q_loss=False),
        HIDDEN_VARIANT,
        False,
        'DROL with mean actor Q aggregation and no Q-loss normalisation.',
    ),
    'drol_k1': ('drol', dict(num_candidates=1), HIDDEN_VARIANT, False, 'DROL with a single latent candidate (K=1).'),
    'drol_critic_bon': (
        'drol',
        dict(critic_num_candidates=4, critic_selection_q_agg='min', q_agg='min'),
        HIDDEN_VARIANT,
        False,
        'DROL with best-of-4 TD backup ranked by min target Q, min target aggregation.',
    ),
    'drol_inference_bon': (
        'drol',
        dict(
            inference_best_of_n=True,
            inference_num_samples=32,
            inference_use_density_filter=False,
            inference_q_agg='mean',
        ),
        HIDDEN_DEFAULT,
        True,
        'DROL defaults + best-of-32 inference by mean Q (inference only; training = drol_default).',
    ),
    'drol_inference_density': (
        'drol',
        dict(
            inference_best_of_n=True,
            inference_num_samples=32,
            inference_use_density_filter=True,
            inference_dense_topk=8,
            inference_q_agg='min',
        ),
        HIDDEN_VARIANT,
        True,
        'DROL best-of-32 inference with dense top-8 filter and min Q (inference only).',
    ),
    'fql_default': (
        'fql',
        {},
        HIDDEN_DEFAULT,
        False,
        'FQL reference defaults (alpha 10, flow_steps 10, normalize_q_loss False, q_agg mean).',
    ),
    'fql_norm_min': (
        'fql',
        dict(normalize_q_loss=True, q_agg='min', alpha=3.0),
        HIDDEN_VARIANT,
        False,
        'FQL with Q-loss normalisation, min target aggregation, alpha 3.',
    ),
    'iql_default': (
        'iql',
        {},
        HIDDEN_VARIANT,
        False,
        'IQL reference defaults (expectile 0.9, AWR actor, alpha 10, const_std).',
    ),
    'ifql_default': (
        'ifql',
        {},
        HIDDEN_VARIANT,
        False,
        'IFQL reference defaults (expectile 0.9, best of 32 flow samples, flow_steps 10).',
    ),
    'rebrac_default': (
        'rebrac',
        {},
        HIDDEN_VARIANT,
        False,
        'ReBRAC reference defaults (tanh actor, alpha_actor = alpha_critic = 0, actor_freq 2).',
    ),
    'sac_default': (
        'sac',
        {},
        HIDDEN_VARIANT,
        False,
        'SAC reference defaults (tanh actor, state-dependent std, automatic target entropy, q_agg min).',
    ),
    **{
        f'pixels_{agent}': (agent, PIXELS, HIDDEN_PIXELS, False, f'{agent} reference defaults on images, impala_debug.')
        for agent in ('fql', 'iql', 'ifql', 'rebrac')
    },
}


def fixture_file(name):
    """The file of case `name`: golden_<case>.npz (tests/test_golden_references.py), or <case>.npz for
    the pixel cases, which tests/test_golden_pixels.py compares with tolerances of their own."""
    return f'{name}.npz' if name.startswith('pixels_') else f'golden_{name}.npz'


# Reference repository -> address. The tests compare against numbers from these.
REPOSITORIES = {'fql': 'https://github.com/seohongpark/fql', 'drol': 'https://github.com/muzhancun/DROL'}

# Reference agent -> (module, class, repository).
REFERENCES = {
    'drol': ('agents.drol', 'DROLAgent', 'drol'),
    'fql': ('agents.fql', 'FQLAgent', 'fql'),
    'iql': ('agents.iql', 'IQLAgent', 'fql'),
    'ifql': ('agents.ifql', 'IFQLAgent', 'fql'),
    'rebrac': ('agents.rebrac', 'ReBRACAgent', 'fql'),
    'sac': ('agents.sac', 'SACAgent', 'fql'),
}

# References whose loss reads batch['next_actions'] (ReBRAC's critic BC term).
NEEDS_NEXT_ACTIONS = ('rebrac',)
# References whose `sample_actions` takes one observation only (IFQL's best-of-N indexes a flat
# argmax), so only `actions/single` is stored for them.
SINGLE_OBSERVATION_ONLY = ('ifql',)


def update_kwargs(which, config, step):
    """Extra arguments of the reference's `update` at training step `step` (1-based), as the
    reference main.py passes them: ReBRAC updates its actor and targets every `actor_freq` steps."""
    if which == 'rebrac':
        return dict(full_update=(step % config['actor_freq'] == 0))
    return {}


def make_batches(next_actions=False, pixels=False):
    """The ten fixed batches shared by every case (numpy only, float32); with `next_actions`, each
    also gets next_actions ~ U(-0.95, 0.95) from a generator of its own. With `pixels`, batches of
    PIXEL_BATCH_SIZE whose observations are uniform uint8 images of IMAGE_SHAPE."""
    rng = np.random.default_rng(BATCH_SEED)
    next_rng = np.random.default_rng(NEXT_ACTION_SEED)
    size = PIXEL_BATCH_SIZE if pixels else BATCH_SIZE

    def observations():
        if pixels:
            return rng.integers(0, 256, (size, *IMAGE_SHAPE), dtype=np.uint8)
        return rng.standard_normal((size, OBS_DIM)).astype(np.float32)

    batches = []
    for _ in range(NUM_BATCHES):
        batches.append(
            dict(
                observations=observations(),
                actions=rng.uniform(-0.95, 0.95, (size, ACTION_DIM)).astype(np.float32),
                rewards=rng.standard_normal(size).astype(np.float32),
                masks=(rng.random(size) < 0.8).astype(np.float32),
                next_observations=observations(),
            )
        )
        if next_actions:
            batches[-1]['next_actions'] = next_rng.uniform(-0.95, 0.95, (size, ACTION_DIM)).astype(np.float32)
    return batches


def flatten(tree, prefix):
    """Flattens nested mappings to {'prefix/a/b': np.ndarray} (keys sorted for determinism)."""
    out = {}

    def rec(node, path):
        if hasattr(node, 'items'):
            for k in sorted(node.keys()):
                rec(node[k], f'{path}/{k}')
        else:
            out[path] = np.asarray(node)

    rec(tree, prefix)
    return out


def to_f32(flat):
    return {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in flat.items()}


def config_arrays(prefix, config):
    out = {}
    for k, v in config.items():
        if v is None:
            continue
        if isinstance(v, str):
            out[f'{prefix}/{k}'] = np.asarray(v)
        elif isinstance(v, bool):
            out[f'{prefix}/{k}'] = np.asarray(v, dtype=bool)
        elif isinstance(v, int):
            out[f'{prefix}/{k}'] = np.asarray(v, dtype=np.int64)
        elif isinstance(v, float):
            out[f'{prefix}/{k}'] = np.asarray(v, dtype=np.float32)
        elif isinstance(v, (tuple, list)):
            out[f'{prefix}/{k}'] = np.asarray(v)
        else:
            out[f'{prefix}/{k}'] = np.asarray(str(v))
    return out


# ----------------------------------------------------------------------------------------
# Worker: runs inside one reference checkout, imports nothing from this project.
# ----------------------------------------------------------------------------------------


def run_worker(which, repo, out_dir, case_names, commit):
    repo = os.path.abspath(repo)
    here = os.path.dirname(os.path.abspath(__file__))
    project = os.path.dirname(here)
    sys.path[:] = [repo] + [p for p in sys.path if p not in ('', '.') and os.path.abspath(p) not in (here, project)]
    os.chdir(repo)

    import importlib

    import jax

    jax.config.update('jax_platforms', 'cpu')
    jax.config.update('jax_enable_x64', False)
    jax.config.update('jax_default_prng_impl', 'threefry2x32')
    jax.config.update('jax_threefry_partitionable', True)

    def key_bits(key):
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        return np.asarray(key, dtype=np.uint32)

    for name in case_names:
        if name == FRAMES_CASE:
            write_frames_fixture(out_dir, commit)
            continue
        ref, overrides, hidden, inference_only, _ = CASES[name]
        module_name, class_name, repository = REFERENCES[ref]
        assert repository == which
        module = importlib.import_module(module_name)
        assert os.path.abspath(module.__file__).startswith(repo), module.__file__
        agent_class = getattr(module, class_name)

        pixels = 'encoder' in overrides
        batches = make_batches(next_actions=ref in NEEDS_NEXT_ACTIONS, pixels=pixels)
        jbatches = [{k: jax.numpy.asarray(v) for k, v in b.items()} for b in batches]
        batch0 = jbatches[0]

        config = module.get_config()
        case_config = dict(
            actor_hidden_dims=tuple(hidden),
            value_hidden_dims=tuple(hidden),
            batch_size=len(batches[0]['actions']),
            **overrides,
        )
        for k, v in case_config.items():
            assert k in config, f'{k} is not a key of the reference config'
            config[k] = v
        config['encoder'] = overrides.get('encoder')
        full_config = dict(config)

        agent = agent_class.create(
            seed=AGENT_SEED,
            ex_observations=batches[0]['observations'][:1],
            ex_actions=batches[0]['actions'][:1],
            config=config,
        )

        # Make every target differ from its source (the reference copies it at init): one noise
        # generator, targets in sorted name order, leaves in sorted path order.
        params = jax.tree_util.tree_map(np.asarray, agent.network.params)
        params = {k: v for k, v in params.items()}
        noise_rng = np.random.default_rng(TARGET_NOISE_SEED)

        def rebuild(node, path, noisy):
            if hasattr(node, 'items'):
                return {k: rebuild(node[k], f'{path}/{k}', noisy) for k in node}
            return noisy[path]

        for target in sorted(k for k in params if k.startswith('modules_target_')):
            source = 'modules_' + target[len('modules_target_') :]
            noisy = {
                k: (v + TARGET_NOISE_SCALE * noise_rng.standard_normal(v.shape)).astype(np.float32)
                for k, v in flatten(params[source], '').items()
            }
            params[target] = rebuild(params[source], '', noisy)
        params = jax.tree_util.tree_map(jax.numpy.asarray, params)
        network = agent.network.replace(params=params, opt_state=agent.network.tx.init(params))
        agent = agent.replace(network=network)

        out = {}
        out.update(config_arrays('config', case_config))
        out.update(config_arrays('ref_config', full_config))
        if pixels:
            out['meta/image_shape'] = np.asarray(IMAGE_SHAPE, dtype=np.int64)
        else:
            out['meta/obs_dim'] = np.asarray(OBS_DIM, dtype=np.int64)
        out['meta/action_dim'] = np.asarray(ACTION_DIM, dtype=np.int64)
        out['meta/case'] = np.asarray(name)
        out['meta/reference'] = np.asarray(which)
        out['meta/reference_commit'] = np.asarray(commit)
        out['meta/inference_only'] = np.asarray(inference_only)
        out['meta/num_updates'] = np.asarray(NUM_BATCHES, dtype=np.int64)
        out['meta/target_noise_scale'] = np.asarray(TARGET_NOISE_SCALE, dtype=np.float32)
        out['meta/jax_version'] = np.asarray(jax.__version__)
        out['meta/threefry_partitionable'] = np.asarray(bool(jax.config.jax_threefry_partitionable))
        out['rng'] = key_bits(agent.rng)
        for k in batches[0]:
            out[f'batches/{k}'] = np.stack([b[k] for b in batches])
        out.update(flatten(agent.network.params, 'params0'))

        obs8 = batch0['observations'][:NUM_ACTION_OBS]
        if ref not in SINGLE_OBSERVATION_ONLY:
            out['actions/batched'] = np.asarray(agent.sample_actions(obs8, seed=jax.random.PRNGKey(ACTION_SEED)))
            assert out['actions/batched'].shape == (NUM_ACTION_OBS, ACTION_DIM)
        out['actions/single'] = np.asarray(
            agent.sample_actions(batch0['observations'][0], seed=jax.random.PRNGKey(ACTION_SEED))
        )
        assert out['actions/single'].shape == (ACTION_DIM,)

        if not inference_only:
            _, r = jax.random.split(agent.rng)  # Exactly the rng that `update` gives `total_loss`.
            out['rng_loss0'] = key_bits(r)
            loss0, info0 = agent.total_loss(batch0, agent.network.params, rng=r)
            out['loss0'] = np.asarray(loss0)
            out.update(flatten(info0, 'info0'))
            grads0 = jax.grad(lambda p, a=agent, r=r, b=batch0: a.total_loss(b, p, rng=r)[0])(agent.network.params)
            out.update(flatten(grads0, 'grads0'))

            infos, flags = [], []
            for i, b in enumerate(jbatches):
                kwargs = update_kwargs(ref, config, i + 1)
                flags.append(kwargs.get('full_update', True))
                agent, info = agent.update(b, **kwargs)
                infos.append(flatten(info, 'update_info'))
                if i == 0:
                    out.update(flatten(agent.network.params, 'params1'))
                    out['rng1'] = key_bits(agent.rng)
            # A metric missing from some updates (ReBRAC's actor metrics on critic-only steps) is NaN there.
            for k in sorted(set().union(*infos)):
                out[k] = np.stack([d.get(k, np.float32(np.nan)) for d in infos])
            out.update(flatten(agent.network.params, 'params10'))
            out['rng10'] = key_bits(agent.rng)
            if ref == 'rebrac':
                out['meta/full_update'] = np.asarray(flags, dtype=bool)

        out = to_f32(out)
        path = os.path.join(out_dir, fixture_file(name))
        np.savez_compressed(path, **out)
        print(f'[{which}] wrote {path} ({len(out)} arrays, {os.path.getsize(path)} bytes)', flush=True)


def frames_dataset():
    """Episodes of EPISODE_LENGTHS transitions laid end to end as OGBench stores them: each episode's
    frames 0..L, observations its frames 0..L-1, next_observations its frames 1..L, terminals 1 at
    its last transition. Every frame is distinct (uniform uint8)."""
    rng = np.random.default_rng(BATCH_SEED)
    observations, next_observations, terminals = [], [], []
    for length in EPISODE_LENGTHS:
        frames = rng.integers(0, 256, (length + 1, *FRAME_SHAPE), dtype=np.uint8)
        observations.append(frames[:-1])
        next_observations.append(frames[1:])
        terminals.append(np.eye(length, dtype=np.float32)[-1])
    return {
        'observations': np.concatenate(observations),
        'next_observations': np.concatenate(next_observations),
        'terminals': np.concatenate(terminals),
    }


def write_frames_fixture(out_dir, commit):
    """frames_reference.npz: the FQL codebase's `Dataset.sample` frame stacks of every index of
    `frames_dataset()` for each of FRAME_STACKS, and its `batched_random_crop` (padding 3) of fixed
    images at fixed offsets. Runs inside the FQL checkout (the worker)."""
    from utils.datasets import Dataset, batched_random_crop

    data = frames_dataset()
    out = {f'dataset/{key}': value for key, value in data.items()}
    indices = np.arange(len(data['observations']))
    for stack in FRAME_STACKS:
        dataset = Dataset.create(**data)
        dataset.frame_stack = stack
        batch = dataset.sample(len(indices), idxs=indices)
        out[f'stack{stack}/observations'] = np.asarray(batch['observations'])
        out[f'stack{stack}/next_observations'] = np.asarray(batch['next_observations'])
    rng = np.random.default_rng(ACTION_SEED)
    images = rng.integers(0, 256, CROP_IMAGES, dtype=np.uint8)
    offsets = rng.integers(0, 7, (CROP_IMAGES[0], 2))
    crop_froms = np.concatenate([offsets, np.zeros((CROP_IMAGES[0], 1), dtype=offsets.dtype)], axis=1)
    out['crop/images'] = images
    out['crop/offsets'] = offsets
    out['crop/cropped'] = np.asarray(batched_random_crop(images, crop_froms, 3))
    out['meta/reference_commit'] = np.asarray(commit)
    path = os.path.join(out_dir, 'frames_reference.npz')
    np.savez_compressed(path, **out)
    print(f'[fql] wrote {path} ({len(out)} arrays, {os.path.getsize(path)} bytes)', flush=True)


# ----------------------------------------------------------------------------------------
# Parent: spawns one worker per reference, then writes the README.
# ----------------------------------------------------------------------------------------


def git_head(repo):
    return subprocess.run(
        ['git', '-C', repo, 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True
    ).stdout.strip()


def git_dirty(repo):
    out = subprocess.run(
        ['git', '-C', repo, 'status', '--porcelain'], capture_output=True, text=True, check=True
    ).stdout
    return bool(out.strip())


def worker_env():
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env['JAX_PLATFORMS'] = 'cpu'
    env['JAX_ENABLE_X64'] = '0'
    env['XLA_FLAGS'] = XLA_FLAGS
    env['TF_DETERMINISTIC_OPS'] = '1'
    env['PYTHONHASHSEED'] = '0'
    env['PYTHONDONTWRITEBYTECODE'] = '1'  # Leave the reference checkouts untouched.
    return env


def human(n):
    return f'{n / 1024:.0f} KiB' if n < 1024 * 1024 else f'{n / 1024 / 1024:.2f} MiB'


def group_keys(keys):
    """Compact key listing: parameter trees once, other keys in full."""
    tree_prefixes = ('params0/', 'params1/', 'params10/', 'grads0/')
    other = sorted(k for k in keys if not k.startswith(tree_prefixes))
    leaves = sorted(k[len('params0/') :] for k in keys if k.startswith('params0/'))
    return other, leaves


def write_readme(out_dir, command, last_run, commits, dirty, versions):
    lines = [
        '# Golden fixtures from the reference implementations',
        '',
        'Made by `scripts/make_golden_fixtures.py` (read its docstring); do not edit by hand. Every',
        'number here was produced by the public reference code, imported at run time from a',
        'checkout: the tests compare this project against these files. Regenerate only when the',
        'references (commits below) or the cases in the script change. It never runs in CI.',
        '',
        '## Command',
        '',
        '```',
        command,
        '```',
        '',
        '(the two paths are local checkouts of the repositories below, at the commits listed; add',
        '`--cases=a,b` to regenerate some cases only). The tests allow each number to move a little',
        'since the references themselves do between machines and builds: to see how far, regenerate',
        'into another folder and run `python scripts/make_golden_fixtures.py --drift=THAT_FOLDER`',
        '(tolerances and measurements: tests/test_golden_references.py).',
        '',
        *(
            [f'The last run regenerated only `--cases={last_run}`; the other files are from earlier runs.', '']
            if last_run
            else []
        ),
        '## References',
        '',
    ]
    for which in REPOSITORIES:
        if which in commits:
            mark = ' (checkout had local changes!)' if dirty.get(which) else ''
            lines.append(f'- {which}: {REPOSITORIES[which]} @ `{commits[which]}`{mark}')
    lines += [
        f'- run with jax {versions["jax"]}, flax {versions["flax"]}, optax {versions["optax"]}, '
        f'numpy {versions["numpy"]}, on CPU, float32, `jax_threefry_partitionable=True`,',
        f'  `XLA_FLAGS="{XLA_FLAGS}"`.',
        '',
        '## Setup shared by all cases',
        '',
        f'- obs dim {OBS_DIM}, action dim {ACTION_DIM}, batch {BATCH_SIZE}, {NUM_BATCHES} batches from',
        f'  `np.random.default_rng({BATCH_SEED})`: per batch, in this order, observations ~ N(0,1),',
        '  actions ~ U(-0.95, 0.95), rewards ~ N(0,1), masks = (U(0,1) < 0.8), next_observations ~ N(0,1).',
        f'  Cases of {", ".join(NEEDS_NEXT_ACTIONS)} also get next_actions ~ U(-0.95, 0.95) per batch, from',
        f'  `np.random.default_rng({NEXT_ACTION_SEED})` (so the other fields are the same as everywhere).',
        f'- agent = `AgentClass.create(seed={AGENT_SEED}, ex_observations=obs0[:1], ex_actions=act0[:1], config)` with',
        '  config = reference `get_config()` + the `config/*` overrides, encoder None.',
        f'- then every target `params["modules_target_X"]` = `params["modules_X"]` + {TARGET_NOISE_SCALE} * N(0,1)',
        f'  noise (one `np.random.default_rng({TARGET_NOISE_SEED})` for all targets, in sorted name order, e.g.',
        '  target_actor before target_critic for ReBRAC; leaves in sorted path order) and',
        '  `opt_state = tx.init(params)`; that agent is the starting point (`params0`, `rng`).',
        '- pixel cases (`pixels_<agent>.npz`, read by tests/test_golden_pixels.py): the same, with encoder',
        f'  {PIXELS["encoder"]}, batch {PIXEL_BATCH_SIZE}, and observations and next observations uint8 images',
        f'  {IMAGE_SHAPE} drawn with `rng.integers(0, 256)` in their place (`meta/image_shape` for `meta/obs_dim`).',
        "- `frames_reference.npz`: the FQL codebase's `Dataset.sample(idxs=every row)` with `frame_stack` in",
        f'  {FRAME_STACKS} (`stack<N>/observations`, `stack<N>/next_observations`) on episodes of {EPISODE_LENGTHS}',
        f'  transitions of distinct uint8 {FRAME_SHAPE} frames (`dataset/*`), and its `batched_random_crop`',
        f'  (padding 3) of {CROP_IMAGES} uint8 images at fixed offsets (`crop/images`, `crop/offsets`,',
        '  `crop/cropped`).',
        '',
        '## Cases',
        '',
        '| case | reference | hidden dims | overrides | file size |',
        '|---|---|---|---|---|',
    ]
    total = 0
    all_keys = {}
    for name, (which, overrides, hidden, inference_only, _desc) in CASES.items():
        path = os.path.join(out_dir, fixture_file(name))
        if not os.path.exists(path):
            continue
        size = os.path.getsize(path)
        total += size
        with np.load(path) as f:
            all_keys[name] = list(f.keys())
        ov = ', '.join(f'{k}={v!r}' for k, v in overrides.items()) or '(defaults)'
        tag = ' (inference only)' if inference_only else ''
        lines.append(f'| `{name}` | {which} | {hidden} | {ov}{tag} | {human(size)} |')
    lines += ['', f'Total size: {human(total)} ({total} bytes).', '']
    lines += [
        '## Keys',
        '',
        'Flat keys with `/` separators; parameter trees use the reference module names.',
        '',
        '- `meta/*`: obs_dim, action_dim, case, reference, reference_commit, inference_only, num_updates,',
        '  target_noise_scale, jax_version, threefry_partitionable.',
        '- `config/*`: the case settings applied to the reference `get_config()` (hidden dims,',
        '  batch_size and the overrides); `ref_config/*`: the full resolved reference config (None values omitted).',
        "- `rng`: the agent's initial rng key (uint32 key data). `batches/<field>`: leading axis 10.",
        '- `params0/...`: the starting parameters (targets perturbed).',
        '- `actions/batched`: `sample_actions(obs0[:8], seed=PRNGKey(7))`; `actions/single`: same for `obs0[0]`',
        '  (unbatched), both on the starting agent, temperature 1. '
        f"{', '.join(SINGLE_OBSERVATION_ONLY)}: `actions/single` only (the reference's `sample_actions`",
        '  takes one observation).',
        '',
        'Training cases (not `inference_only`) also have:',
        '- `rng_loss0`: `jax.random.split(rng)[1]`, the rng `update` passes to `total_loss`.',
        '- `loss0`, `info0/<metric>`: `total_loss(batch0, params0, rng=rng_loss0)`.',
        '- `grads0/...`: gradient of that loss w.r.t. all params (zero for the target critic).',
        '- `update_info/<metric>`: the infos of the 10 `update(batch_i)` calls, stacked (leading axis 10);',
        '  NaN where an update did not log the metric.',
        '- rebrac: `meta/full_update`: the `full_update` flag of each of the 10 updates, as the reference main.py',
        '  passes it at step i = 1..10: `i % actor_freq == 0` (`loss0`, `info0`, `grads0` use the default True).',
        '- `params1/...`, `rng1`: after the first update; `params10/...`, `rng10`: after all ten.',
        '',
    ]
    seen = set()
    for name, keys in all_keys.items():
        which, inference_only = CASES[name][0], CASES[name][3]
        other, leaves = group_keys(keys)
        if which not in seen:
            seen.add(which)
            lines += [f'### {which}: parameter leaves', '']
            lines.append(
                'Under `params0/` (every case) and `params1/`, `params10/`, `grads0/` (training cases); '
                'critic leaves carry a leading ensemble axis of 2 (a single-head state value has none):'
            )
            lines.append('')
            lines += [f'- `{leaf}`' for leaf in leaves]
            lines.append('')
        kind = 'inference-only' if inference_only else 'training'
        if (which, kind) not in seen:
            seen.add((which, kind))
            lines += [f'### {which} {kind} case (e.g. `{name}`): other keys', '']
            lines.append(', '.join(f'`{k}`' for k in other if not k.startswith(('config/', 'ref_config/'))))
            lines.append('')
    with open(os.path.join(out_dir, 'README.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return total


def print_drift(new_dir, stored_dir):
    """Per case and kind of number, the largest drift of the fixtures in `new_dir` from those in
    `stored_dir`, measured as tests/test_golden_references.py measures it, beside its tolerance."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.test_golden_references import KINDS, TOLERANCE, drift

    worst = {}
    for path in sorted(
        glob.glob(os.path.join(new_dir, 'golden_*.npz'))
    ):  # The pixel cases: tests/test_golden_pixels.py.
        stored_path = os.path.join(stored_dir, os.path.basename(path))
        if not os.path.exists(stored_path):
            continue
        with np.load(path) as new, np.load(stored_path) as stored_file:
            stored = {key: stored_file[key] for key in stored_file.files}
            row = {}
            for key in new.files:
                kind = KINDS.get(key.split('/')[0])
                if kind and key in stored:
                    row[kind] = max(row.get(kind, 0.0), drift(new[key], stored, key))
        for kind, value in row.items():
            worst[kind] = max(worst.get(kind, 0.0), value)
        print(os.path.basename(path), '  '.join(f'{kind} {value:.1e}' for kind, value in sorted(row.items())))
    for kind, value in sorted(worst.items()):
        print(
            f'largest {kind} drift {value:.1e}, tolerance {TOLERANCE[kind]:.0e} ({TOLERANCE[kind] / value:.0f}x)'
            if value
            else f'largest {kind} drift 0, tolerance {TOLERANCE[kind]:.0e}'
        )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Make tests/fixtures/golden_<case>.npz from the public FQL and DROL reference code '
        '(developer tool; never run in CI).'
    )
    parser.add_argument('--fql_repo', help='checkout of github.com/seohongpark/fql')
    parser.add_argument('--drol_repo', help='checkout of github.com/muzhancun/DROL')
    default_out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'fixtures')
    parser.add_argument('--out', default=default_out, help='output folder (default: tests/fixtures)')
    every_case = [*CASES, FRAMES_CASE]
    parser.add_argument(
        '--cases', default=','.join(every_case), help='comma-separated subset of: ' + ', '.join(every_case)
    )
    parser.add_argument(
        '--drift',
        metavar='DIR',
        help='generate nothing: print how far the fixtures in DIR moved from those in --out, as the tests measure it',
    )
    parser.add_argument('--worker', choices=sorted(REPOSITORIES), help=argparse.SUPPRESS)
    parser.add_argument('--repo', help=argparse.SUPPRESS)
    parser.add_argument('--commit', default='', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    cases = [c for c in args.cases.split(',') if c]
    unknown = [c for c in cases if c not in CASES and c != FRAMES_CASE]
    if unknown:
        parser.error(f'unknown cases: {unknown}')

    if args.worker:
        run_worker(args.worker, args.repo, os.path.abspath(args.out), cases, args.commit)
        return 0
    if args.drift:
        print_drift(args.drift, args.out)
        return 0

    if os.environ.get('CI', '').lower() not in ('', '0', 'false'):
        print('make_golden_fixtures.py is a developer tool and does not run in CI.', file=sys.stderr)
        return 2
    repos = {'fql': args.fql_repo, 'drol': args.drol_repo}

    def repository(case):
        return 'fql' if case == FRAMES_CASE else REFERENCES[CASES[case][0]][2]

    needed = sorted({repository(c) for c in cases})
    for which in needed:
        if not repos[which]:
            parser.error(f'--{which}_repo is required for cases {[c for c in cases if repository(c) == which]}')
        for ref in sorted({CASES[c][0] for c in cases if c in CASES and repository(c) == which}):
            if not os.path.isfile(os.path.join(repos[which], *REFERENCES[ref][0].split('.')) + '.py'):
                parser.error(f'{repos[which]} has no {REFERENCES[ref][0]}')

    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    commits, dirty = {}, {}
    for which in needed:
        repo = os.path.abspath(repos[which])
        commits[which] = git_head(repo)
        dirty[which] = git_dirty(repo)
        if dirty[which]:
            print(f'warning: {repo} has local changes', file=sys.stderr)
        names = [c for c in cases if repository(c) == which]
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            f'--worker={which}',
            f'--repo={repo}',
            f'--commit={commits[which]}',
            f'--out={out_dir}',
            f'--cases={",".join(names)}',
        ]
        subprocess.run(cmd, check=True, env=worker_env(), cwd=repo)

    versions = json.loads(
        subprocess.run(
            [
                sys.executable,
                '-c',
                'import json, jax, flax, optax, numpy; print(json.dumps(dict(jax=jax.__version__, '
                'flax=flax.__version__, optax=optax.__version__, numpy=numpy.__version__)))',
            ],
            capture_output=True,
            text=True,
            check=True,
            env=worker_env(),
            cwd='/',
        ).stdout
    )
    # Remember every repository that produced a file in the folder (a partial run keeps the others).
    for path in glob.glob(os.path.join(out_dir, 'golden_*.npz')) + glob.glob(os.path.join(out_dir, 'pixels_*.npz')):
        with np.load(path) as f:
            if 'meta/reference' in f.files and str(f['meta/reference']) in REFERENCES:
                which = REFERENCES[str(f['meta/reference'])][2]
                commits.setdefault(which, str(f['meta/reference_commit']))
    # The command that makes every case; a partial run is noted apart.
    command = 'python scripts/make_golden_fixtures.py ' + ' '.join(
        [
            f'--fql_repo={args.fql_repo or "PATH/TO/seohongpark/fql"}',
            f'--drol_repo={args.drol_repo or "PATH/TO/muzhancun/DROL"}',
            f'--out={os.path.relpath(out_dir)}',
        ]
    )
    last_run = ','.join(cases) if set(cases) != set(every_case) else ''
    total = write_readme(out_dir, command, last_run, commits, dirty, versions)
    print(f'wrote {out_dir}/README.md; total fixture size {human(total)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
