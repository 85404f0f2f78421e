"""Sweep expansion and the report's protocol scores, plots and missing-run flags."""

import json
import os

import numpy as np
import pytest

from scripts.report import write_report
from scripts.sweep import expand, is_finished, parse_seeds
from utils.errors import UserError


@pytest.mark.parametrize('suite, environments', [
    ('ogbench-default', 10), ('ogbench-all', 50), ('d4rl-antmaze', 6), ('d4rl-adroit', 12)])
def test_suites_expand_to_one_command_per_env_agent_seed(suite, environments):
    runs = expand(suite, ['drol', 'fql'], parse_seeds('0-7'), 'sweep')
    assert len(runs) == environments * 2 * 8
    assert len({run_dir for run_dir, _ in runs}) == len(runs)


def test_commands_carry_the_paper_settings():
    commands = [' '.join(c) for _, c in expand('ogbench-all', ['drol', 'fql'], [0], 'sweep')]
    cube_double_drol = [c for c in commands if '--env_name=cube-double-play-task2 ' in c and '--agent=drol' in c]
    assert len(cube_double_drol) == 1 and '--agent.bc_coef=3.0' in cube_double_drol[0]
    antmaze_fql = [c for c in commands if 'antmaze-giant-navigate-task1 ' in c and '--agent=fql' in c][0]
    assert '--agent.alpha=10.0' in antmaze_fql and '--agent.discount=0.995' in antmaze_fql
    assert '--agent.q_agg=min' in antmaze_fql
    star = [' '.join(c) for _, c in expand('ogbench-default', ['drol'], [0], 'sweep', preset='drol_star')]
    assert any('puzzle-3x3-play ' in c and '--agent.num_candidates=32' in c for c in star)
    door = [' '.join(c) for _, c in expand('d4rl-adroit', ['drol'], [0], 'sweep') if 'door-human' in ' '.join(c)][0]
    assert '--agent.bc_coef=10.0' in door and '--offline_steps=500000' in door and '--agent.q_agg=min' in door


def test_envs_narrow_the_suite():
    runs = expand('ogbench-default', ['drol', 'fql'], [0, 1, 2], 'sweep', envs=['cube-single-play'])
    assert len(runs) == 6 and all('cube-single-play' in run_dir for run_dir, _ in runs)
    with pytest.raises(UserError, match='not in suite'):
        expand('ogbench-default', ['drol'], [0], 'sweep', envs=['cube-single-play-task9'])


def test_bad_seed_text_is_a_clear_error():
    with pytest.raises(UserError, match='--seeds'):
        parse_seeds('zero-7')


def fake_run(root, agent, env, seed, successes, final_step=400, with_eval=True):
    run_dir = root / 'runs' / f'{agent}_{env}_sd{seed}'
    os.makedirs(run_dir)
    (run_dir / 'flags.json').write_text(json.dumps(
        {'env_name': env, 'seed': seed, 'offline_steps': final_step,
         'agent': {'agent_name': agent, 'actor_hidden_dims': [64, 64], 'batch_size': 32}}))
    train = ['step,training/actor/candidate_pairwise_dist,training/actor/duplicate_share,training/actor/bc_loss']
    train += [f'{s},{1 + seed},{0.1 * seed},{0.5}' for s in (100, 200, 300)]
    (run_dir / 'train.csv').write_text('\n'.join(train) + '\n')
    if with_eval:
        rows = ['step,evaluation/success'] + [f'{100 * (i + 1)},{v}' for i, v in enumerate(successes)]
        (run_dir / 'eval.csv').write_text('\n'.join(rows) + '\n')
    return run_dir


def test_report_scores_plots_and_flags(tmp_path):
    fake_run(tmp_path, 'drol', 'cube-single-play', 0, [0.0, 0.5, 0.7, 0.9])
    fake_run(tmp_path, 'drol', 'cube-single-play', 1, [0.1, 0.3, 0.5, 0.7])
    fake_run(tmp_path, 'fql', 'cube-single-play', 0, [0.2, 0.2, 0.2, 0.2])
    missing = fake_run(tmp_path, 'fql', 'cube-single-play', 1, [], with_eval=False)
    partial = fake_run(tmp_path, 'fql', 'cube-single-play', 2, [0.3])
    out = tmp_path / 'report'
    text = (open(write_report(str(tmp_path), str(out))).read())

    drol_scores = [100 * np.mean([0.5, 0.7, 0.9]), 100 * np.mean([0.3, 0.5, 0.7])]
    expected_drol = f'{np.mean(drol_scores):.1f} ± {np.std(drol_scores):.1f} (n=2)'
    assert f'| cube-single-play | {expected_drol} | 20.0 ± 0.0 (n=1) |' in text
    assert '| cube-single-play | drol | actor_hidden_dims=(64, 64), batch_size=32, offline_steps=400 |' in text
    assert f'`{missing}`: missing eval.csv' in text
    assert f'`{partial}`: partial: last evaluation at step 100 of 400' in text
    for name in ('curve_cube-single-play.png', 'routing_cube-single-play.png'):
        with open(out / name, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
        assert name in text
    assert is_finished(str(tmp_path / 'runs' / 'drol_cube-single-play_sd0'))
    assert not is_finished(str(partial)) and not is_finished(str(missing))
