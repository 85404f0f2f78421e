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
