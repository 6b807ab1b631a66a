"""common/progress.py: a tqdm bar on a terminal, a few plain lines anywhere else, nothing on stdout."""

from __future__ import annotations

import io

import pytest

from common.progress import Progress, progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal_start_end_and_no_more_than_every_s() -> None:
    stream = io.StringIO()
    seen = list(progress(range(500), 500, "job", "events", stream=stream, every_s=3600.0))
    assert seen == list(range(500))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # a CI log gets the start and the end, not 500 redraws
    assert lines[0].startswith("job: 0/500 events (0 %)")
    assert lines[1].startswith("job: 500/500 events (100 %)") and lines[1].endswith(", done")


def test_timed_progress_clips_to_its_total_and_carries_the_phase() -> None:
    stream = io.StringIO()
    with Progress(60.0, "bench", "s", stream=stream, every_s=0.0) as bar:
        bar.note("warm-up")
        bar.advance_to(20.0)
        bar.advance_to(10.0)  # never backwards
        bar.advance_to(90.0)
    lines = stream.getvalue().splitlines()
    assert lines[1].startswith("bench: 20/60 s (33 %)") and lines[1].endswith("warm-up")
    assert lines[-1].startswith("bench: 60/60 s (100 %)")


def test_a_terminal_gets_a_tqdm_bar() -> None:
    pytest.importorskip("tqdm")
    stream = _Terminal()
    for _ in progress(range(3), 3, "job", "events", stream=stream):
        pass
    text = stream.getvalue()
    assert "job" in text and "3/3" in text and "\r" in text


def test_write_keeps_output_lines_intact_and_disabled_shows_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    bar = Progress(10, "job", stream=stream)
    bar.write('{"report": 1}')
    bar.close()
    assert capsys.readouterr().out == '{"report": 1}\n'
    quiet = io.StringIO()
    with Progress(None, "", stream=quiet, enabled=False) as off:
        off.update(5)
    assert quiet.getvalue() == ""
