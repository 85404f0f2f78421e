"""Progress records when the output is not a terminal (pytest's capture is not one)."""

from utils.progress import Progress, duration


def test_lines_name_the_unit_count_and_time_left(capsys):
    with Progress('cube-single-play', total=10, initial=2, line_every_s=0.0, unit='episode') as progress:
        for _ in range(3):
            progress.update(1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines[-1].startswith('cube-single-play: episode 5/10 (50%), ') and lines[-1].endswith(' left')
    assert 'episodes/s' in lines[-1]


def test_disabled_progress_prints_nothing(capsys):
    with Progress('quiet', total=10, initial=0, line_every_s=0.0, enabled=False) as progress:
        for _ in range(3):
            progress.update(1)
    captured = capsys.readouterr()
    assert captured.out == '' and captured.err == ''


def test_duration_reads_as_a_person_would_say_it():
    assert [duration(45), duration(450), duration(7500)] == ['45 s', '7 min 30 s', '2 h 05 min']


def test_speed_counts_only_timed_calls(capsys, monkeypatch):
    """A call that compiled (100 s here) and the wait before it are not training time: 50 steps/s
    from the timed calls, not about 8 counted from the first call."""
    clock = iter([0.0, 100.0, 101.0, 102.0, 103.0])
    monkeypatch.setattr('utils.progress.time.time', lambda: next(clock))
    with Progress('drol', total=1000, initial=0, line_every_s=0.0) as progress:
        progress.update(1, timed=False)  # Step 1 (single update, compiled).
        progress.update(49, timed=False)  # The fused call's first (compiling) run.
        for _ in range(3):
            progress.update(50)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines[-1] == 'drol: step 200/1000 (20%), 50.0 steps/s, 16 s left'


def test_speed_restarts_after_an_untimed_call(capsys, monkeypatch):
    """Fused offline updates at 100 steps/s, then the online phase (its first call compiles) at 1
    step/s: the time left is measured at the online speed."""
    clock = iter([0.0, 1.0, 2.0, 30.0, 31.0, 32.0])
    monkeypatch.setattr('utils.progress.time.time', lambda: next(clock))
    with Progress('drol', total=400, initial=0, line_every_s=0.0) as progress:
        for _ in range(3):
            progress.update(100)
        progress.update(1, timed=False)
        progress.update(1)
        progress.update(1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines[-1] == 'drol: step 303/400 (76%), 1.0 steps/s, 1 min 37 s left'
