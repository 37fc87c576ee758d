"""The landing directory writer: files appear whole under their final name, roll by lines and
by arrival time, are never overwritten, and paced writing keeps to its clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clickagg import errors, sim
from clickagg.sim import landing

pytestmark = pytest.mark.unit

START_MS = 1_455_580_800_000


def lines(count: int, *, every_ms: int = 1000) -> list[sim.Emitted]:
    return [
        sim.Emitted(f'{{"event_id":"e-{n}"}}'.encode(), START_MS + n * every_ms, "valid")
        for n in range(count)
    ]


def generated(minutes: int, visitors: int = 100) -> list[sim.Emitted]:
    return list(
        sim.generate(
            sim.TrafficProfile(visitors=visitors),
            sim.Faults(),
            START_MS,
            minutes * 60_000,
            seed=3,
        )
    )


def landed(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


def test_files_hold_every_line_in_order(tmp_path: Path) -> None:
    sent = generated(60)
    result = landing.write_files(sent, tmp_path, rolling=landing.Rolling(lines_per_file=500))
    files = landed(tmp_path)
    assert files == sorted(result.files)
    assert all(f.suffix == ".jsonl" and not f.name.startswith(".") for f in files)
    written = b"".join(f.read_bytes() for f in sorted(files, key=lambda f: f.name[-12:]))
    assert written == b"".join(e.line + b"\n" for e in sent)
    assert (result.lines, result.bytes) == (len(sent), sum(len(e.line) for e in sent))


def test_files_roll_after_so_many_lines(tmp_path: Path) -> None:
    rolling = landing.Rolling(lines_per_file=100, arrival_ms_per_file=None)
    result = landing.write_files(lines(1050), tmp_path, rolling=rolling)
    counts = [len(f.read_bytes().splitlines()) for f in result.files]
    assert counts == [100] * 10 + [50]


def test_files_roll_by_arrival_time(tmp_path: Path) -> None:
    rolling = landing.Rolling(lines_per_file=10_000, arrival_ms_per_file=60_000)
    result = landing.write_files(lines(300, every_ms=1000), tmp_path, rolling=rolling)
    counts = [len(f.read_bytes().splitlines()) for f in result.files]
    assert counts == [60] * 5
    # The name says when the file's first line arrived.
    assert [int(f.name.split("-")[1]) for f in result.files] == [
        START_MS + n * 60_000 for n in range(5)
    ]


def test_a_file_is_invisible_until_complete(tmp_path: Path) -> None:
    rolling = landing.Rolling(lines_per_file=10, arrival_ms_per_file=None)
    seen: list[tuple[int, list[str]]] = []

    def watched() -> Iterator[sim.Emitted]:
        for n, item in enumerate(lines(35)):
            # What a file source listing the directory now would pick up.
            visible = [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")]
            for name in visible:
                assert len((tmp_path / name).read_bytes().splitlines()) == 10
            seen.append((n, [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]))
            yield item

    landing.write_files(watched(), tmp_path, rolling=rolling)
    hidden = [names for n, names in seen if n % 10 != 0]
    assert all(len(names) == 1 and names[0].endswith(".jsonl.tmp") for names in hidden)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    landing.write_files(lines(5), tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(errors.EngineError, match="another prefix"):
        landing.write_files(lines(5), tmp_path)
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before
    landing.write_files(lines(5), tmp_path, prefix="second-run")
    assert len(list(tmp_path.iterdir())) == 2


def test_a_stopped_run_publishes_what_it_wrote(tmp_path: Path) -> None:
    def interrupted() -> Iterator[sim.Emitted]:
        yield from lines(25)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        landing.write_files(interrupted(), tmp_path, rolling=landing.Rolling(lines_per_file=10))
    files = landed(tmp_path)
    assert [len(f.read_bytes().splitlines()) for f in files] == [10, 10, 5]
    assert all(f.read_bytes().endswith(b"\n") for f in files)


def test_rolling_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="lines_per_file"):
        landing.Rolling(lines_per_file=0)
    with pytest.raises(ValueError, match="arrival_ms_per_file"):
        landing.Rolling(arrival_ms_per_file=0)


# --- pacing -------------------------------------------------------------------------------


def test_paced_writing_follows_the_accelerated_clock(tmp_path: Path) -> None:
    sent = generated(10)
    span_s = (sent[-1].arrival_ms - sent[0].arrival_ms) / 1000
    speed = span_s / 0.3  # ten minutes of traffic in 0.3 s
    started = time.monotonic()
    result = landing.write_files(sent, tmp_path, pacer=landing.Pacer(speed=speed))
    elapsed = time.monotonic() - started
    assert result.lines == len(sent)
    assert 0.25 < elapsed < 3


def test_the_clock_starts_at_the_first_line(tmp_path: Path) -> None:
    # Lines an hour of arrival time into the span, at speed 3600: about one second.
    late_start = [sim.Emitted(b"{}", START_MS + 3_600_000 + n * 100, "valid") for n in range(10)]
    started = time.monotonic()
    landing.write_files(late_start, tmp_path, pacer=landing.Pacer(speed=3600))
    assert time.monotonic() - started < 0.5


def test_paced_writing_keeps_to_the_rate(tmp_path: Path) -> None:
    started = time.monotonic()
    landing.write_files(lines(201, every_ms=0), tmp_path, pacer=landing.Pacer(rate=1000))
    elapsed = time.monotonic() - started
    assert 0.19 < elapsed < 2


def test_a_paced_file_is_published_before_the_wait(tmp_path: Path) -> None:
    # Two lines a minute apart at speed 120: the first file is out while the writer waits.
    two = [sim.Emitted(b"{}", START_MS, "valid"), sim.Emitted(b"{}", START_MS + 60_000, "valid")]
    published_while_waiting: list[int] = []

    def sleep(seconds: float) -> None:
        published_while_waiting.append(len(list(tmp_path.glob("*.jsonl"))))
        time.sleep(seconds)

    pacer = landing.Pacer(speed=120, sleep=sleep)
    landing.write_files(
        two, tmp_path, pacer=pacer, rolling=landing.Rolling(arrival_ms_per_file=60_000)
    )
    assert published_while_waiting == [1]


def test_pacer_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="speed"):
        landing.Pacer(speed=0)
    with pytest.raises(ValueError, match="rate"):
        landing.Pacer(rate=-1)
