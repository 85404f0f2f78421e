"""How a run's budget, data and networks differ from the setting the published numbers were made in.

Why: a report that puts 41.7% after 20k updates on 100 generated episodes beside a paper's 97%
(1M updates on the official 1000-episode dataset) must say so, or the gap reads as a bug. The
facts come from the run's own records: flags.json (steps, networks, batch) and dataset.json
(where the data came from).

The paper setting (FQL protocol, which the DROL paper follows): 1M offline updates on OGBench,
500K on D4RL and pixel-based tasks, batch 256, the official datasets, no online steps, and each agent's default networks
with its `paper` preset ([512] * 4 MLPs; IQL [256] * 4 on cube, scene and puzzle).
"""

from agents import AGENTS
from envs.ogbench_names import is_visual
from utils.presets import SHORT_BUDGET_STEPS

OGBENCH_STEPS = 1_000_000  # The papers' budget on OGBench's state-based tasks (main.py's default).
PAPER_BATCH_SIZE = 256
OFFICIAL_SOURCES = ('local file', 'downloaded', 'd4rl')  # dataset.json sources that are the official data.
NETWORK_KEYS = ('actor_hidden_dims', 'value_hidden_dims')


def paper_networks(agent, env_key):
    """{key: dims} the paper ran `agent` with on `env_key`, or {} for an agent this project lacks."""
    if agent not in AGENTS:
        return {}
    config = AGENTS[agent].default_config()
    config.update(AGENTS[agent].preset_overrides('paper', env_key))
    return {key: tuple(config[key]) for key in NETWORK_KEYS if key in config}


def data_difference(dataset_record):
    """What is known about the run's data when it is not the official dataset ('' when it is)."""
    if dataset_record is None:
        return 'data not recorded (no readable dataset.json)'
    source = str(dataset_record.get('source', ''))
    if 'generated' in source:
        episodes = (dataset_record.get('generator') or {}).get('episodes')
        size = f'{episodes:,} episodes' if isinstance(episodes, int) else 'unknown size'
        return f'a locally generated set of {size}, not the official dataset (1,000 episodes)'
    if source in OFFICIAL_SOURCES:
        return ''
    return f'data from a given file ({dataset_record.get("path")}), not known to be the official dataset'


def differences(flags_record, dataset_record, env_key, d4rl):
    """Sentences naming each way the run differs from the paper setting (empty when it does not)."""
    agent = flags_record['agent']
    found = []
    steps = int(flags_record['offline_steps'])
    paper_steps = SHORT_BUDGET_STEPS if d4rl or is_visual(env_key) else OGBENCH_STEPS
    if steps != paper_steps:
        found.append(f'{steps:,} updates (paper: {paper_steps:,})')
    online = int(flags_record.get('online_steps') or 0)
    if online:
        found.append(f'then {online:,} online steps (the published numbers are offline)')
    if agent.get('batch_size', PAPER_BATCH_SIZE) != PAPER_BATCH_SIZE:
        found.append(f'batch {agent["batch_size"]} (paper: {PAPER_BATCH_SIZE})')
    for key, paper_dims in paper_networks(agent['agent_name'], env_key).items():
        dims = tuple(agent.get(key, paper_dims))
        if dims != paper_dims:
            found.append(f'{key.split("_")[0]} MLP {list(dims)} (paper: {list(paper_dims)})')
    data = data_difference(dataset_record)
    return found + [data] if data else found
