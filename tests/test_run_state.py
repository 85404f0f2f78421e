"""The loop's state: which updates ran at training speed, and which checkpoints the clock keeps."""

from tests.helpers import random_batch, tiny_agent
from utils.checkpoints import checkpoint_steps
from utils.fused_updates import data_key, stack_seeds
from utils.run_state import RunState


def test_an_update_after_a_first_call_is_not_timed():
    state = RunState(agents=None, keys=None, step=0)
    timed = []
    for fn in ['single', 'single', 'fused', 'fused', 'fused']:
        state.note_call(fn)
        timed.append(state.timed_update())
    state.note_call('evaluation')  # A first evaluation between two updates compiles too.
    state.note_call('fused')
    timed.append(state.timed_update())
    assert timed == [False, True, False, True, True, False]


def test_only_the_newest_clock_made_checkpoint_is_kept(tmp_path):
    agents = stack_seeds([tiny_agent('drol', random_batch())])
    state = RunState(agents, stack_seeds([data_key(0)]), step=0)
    for step, kept in ((0, True), (5, False), (7, False), (10, True), (12, False)):
        state.step = step
        state.save([str(tmp_path)], kept=kept)
    assert sorted(checkpoint_steps(str(tmp_path))) == [0, 10, 12] and state.timed_save == 12
