"""The DROL paper's four extra experiments: the K suites, their report figures, the runtime
benchmark and the routing pictures' nearest-candidate cells."""

import os
import subprocess
import sys

import pytest

from scripts.sweep import K_ABLATION_TASKS, expand
from tests.helpers import ROOT
from utils.errors import UserError


def test_k_ablation_expands_to_every_task_k_and_seed_in_its_own_run_dir():
    runs = expand('k-ablation', ['drol'], [0, 1, 2], 'sweep')
    assert len(K_ABLATION_TASKS) == 20
    assert len(runs) == 20 * 6 * 3 and len({run_dir for run_dir, _ in runs}) == len(runs)
    for task in ('cube-single-play-task1', 'scene-play-task2', 'antmaze-giant-navigate-task3', 'pen-expert-v1'):
        assert task in K_ABLATION_TASKS
    assert 'pen-human-v1' not in K_ABLATION_TASKS
    cube = [(d, c) for d, c in runs if '--env_name=cube-single-play-task1' in c]
    assert len(cube) == 18
    for k in (1, 2, 4, 8, 16, 32):
        mine = [(d, c) for d, c in cube if f'--agent.num_candidates={k}' in c]
        assert len(mine) == 3
        for run_dir, command in mine:
            assert run_dir.startswith(os.path.join('sweep', 'runs', f'K{k}', 'drol_cube-single-play-task1_sd'))
            assert f'--run_group=runs/K{k}' in command and '--agent.bc_coef=10.0' in command
    pen = [c for _, c in runs if '--env_name=pen-expert-v1' in c][0]
    assert '--offline_steps=500000' in pen and '--agent.q_agg=min' in pen


def test_candidate_scaling_has_k_up_to_64_on_three_tasks_and_k_beats_the_preset():
    runs = expand('candidate-scaling', ['drol'], [0], 'sweep', preset='drol_star')
    assert len(runs) == 3 * 7
    for k in (1, 2, 4, 8, 16, 32, 64):
        assert sum(f'--agent.num_candidates={k}' in c for _, c in runs) == 3
    for _, command in runs:  # drol_star's own K (64 on cube-double) must not be a second setting.
        assert sum(arg.startswith('--agent.num_candidates=') for arg in command) == 1
    envs = {arg.split('=', 1)[1] for _, c in runs for arg in c if arg.startswith('--env_name=')}
    assert envs == {'antmaze-giant-navigate-task3', 'cube-double-play-task3', 'scene-play-task2'}


def test_k_suites_refuse_agents_without_k():
    with pytest.raises(UserError, match='varies num_candidates'):
        expand('k-ablation', ['drol', 'fql'], [0], 'sweep')


def test_sweep_prints_the_k_suite_with_drol_by_default():
    result = subprocess.run(
        [sys.executable, '-m', 'scripts.sweep', '--suite=candidate-scaling', '--seeds=0', '--print'],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 21 and all(line.startswith('python main.py --agent=drol ') for line in lines)
