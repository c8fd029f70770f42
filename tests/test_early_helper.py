"""The speech helper process started at the top of `coach export` (coach.early_helper)."""

from __future__ import annotations

import pytest

from coach import early_helper
from coach.routine import load_routine
from coach.speech import SpeechSettings, scheduler, synthesize_clips

TEXTS = [f"Hold the stretch and breathe out slowly, count {i}." for i in range(14)]


@pytest.fixture
def no_early_helper():
    """Whatever a test starts early is let go afterwards."""
    early_helper.release()
    yield
    early_helper.release()


def write_routine(folder, texts=TEXTS):
    path = folder / "r.toml"
    cues = ", ".join(f'"{t}"' for t in texts)
    path.write_text(f'title = "T"\n[[poses]]\nname = "P"\nsides = []\nsetup = [{cues}]\n')
    return path


def test_only_a_cache_with_fewer_clips_than_texts_is_surely_cold(tmp_path):
    assert not early_helper.holds_as_many(tmp_path / "missing", 1)
    for i in range(3):
        (tmp_path / f"{i}.clip").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a clip")
    assert early_helper.holds_as_many(tmp_path, 3)
    assert not early_helper.holds_as_many(tmp_path, 4)


def test_the_routine_texts_are_a_lower_bound_of_what_it_speaks(tmp_path):
    from coach.timeline import spoken_texts

    routine = load_routine(str(write_routine(tmp_path)))
    assert early_helper.routine_texts(routine) <= set(spoken_texts(routine))
    builtin = load_routine("leg-stretches")
    assert len(early_helper.routine_texts(builtin)) <= len(spoken_texts(builtin))


def test_a_long_cold_export_starts_the_helper_early_and_the_scheduler_uses_it(
        tmp_path, cold_cache, monkeypatch, no_early_helper):
    monkeypatch.setattr(early_helper, "HELPER_MIN_CHARS", 200)
    monkeypatch.setattr(scheduler, "HELPER_MIN_CHARS", 200)
    early_helper.start_early(str(write_routine(tmp_path)), None)
    process = early_helper._early
    assert process is not None and process.poll() is None  # waiting for its request
    used = []
    real_init = scheduler.Helper.__init__
    monkeypatch.setattr(scheduler.Helper, "__init__",
                        lambda self, proc, *args: (used.append(proc), real_init(self, proc, *args))[1])
    clips = synthesize_clips(TEXTS, SpeechSettings())
    assert list(clips) == TEXTS and all(len(clip.samples) for clip in clips.values())
    assert used == [process]  # the early process, not a second one
    assert early_helper.take() is None
    assert process.wait(timeout=30) == 0


def test_an_early_helper_not_needed_exits_when_let_go(tmp_path, cold_cache, monkeypatch, no_early_helper):
    monkeypatch.setattr(early_helper, "HELPER_MIN_CHARS", 200)
    early_helper.start_early(str(write_routine(tmp_path)), "espeak")
    process = early_helper._early
    assert process is not None
    synthesize_clips(TEXTS[:2], SpeechSettings())  # too little to share: the scheduler lets it go
    assert early_helper._early is None
    assert process.wait(timeout=30) == 0


def test_no_early_helper_for_a_short_routine_a_full_cache_or_a_bad_routine(
        tmp_path, cold_cache, monkeypatch, no_early_helper):
    early_helper.start_early("leg-stretches", None)  # short: one process is faster
    assert early_helper._early is None
    early_helper.start_early(str(tmp_path / "nowhere.toml"), None)  # the real load reports it
    assert early_helper._early is None
    monkeypatch.setattr(early_helper, "HELPER_MIN_CHARS", 200)
    cold_cache.mkdir()
    for i in range(len(TEXTS)):  # as many clips as texts: it may hold them all
        (cold_cache / f"{i}.clip").write_bytes(b"")
    early_helper.start_early(str(write_routine(tmp_path)), None)
    assert early_helper._early is None


@pytest.mark.parametrize("args, expected", [
    (["export", "-o", "s.wav", "R"], ("R", None)),
    (["export", "R", "--output=s.wav", "--engine", "piper"], ("R", "piper")),
    (["export", "--force", "-o", "-", "--speed", "0.8", "--engine=espeak", "R"], ("R", "espeak")),
    (["export", "-o", "s.wav", "--", "-odd-name"], ("-odd-name", None)),
    (["export", "-o", "s.wav"], (None, None)),
    (["start", "R"], "not called"),
])
def test_the_routine_and_engine_are_read_from_an_export_command_line(monkeypatch, args, expected):
    seen = []
    monkeypatch.setattr(early_helper, "start_early", lambda routine, engine: seen.append((routine, engine)))
    early_helper.start_for_command_line(args)
    assert seen == ([] if expected == "not called" else [expected])


def test_one_decision_per_export(tmp_path, cold_cache, monkeypatch, no_early_helper):
    monkeypatch.setattr(early_helper, "HELPER_MIN_CHARS", 200)
    early_helper.start_early(str(write_routine(tmp_path)), None)  # from the command line
    first = early_helper._early
    early_helper.start_early(str(write_routine(tmp_path)), None)  # again in cli.export: the same one
    assert early_helper._early is first is not None
    early_helper.release()
    assert first.wait(timeout=30) == 0
    early_helper.start_early(str(write_routine(tmp_path)), None)  # the next export decides again
    assert early_helper._early is not None and early_helper._early is not first


def test_the_helper_started_early_exits_quietly_on_no_request(cold_cache):
    process = early_helper.spawn_helper(early_helper.HELPER_COMMAND, cold_cache, "espeak")
    out, _ = process.communicate("", timeout=60)
    assert process.returncode == 0 and out == ""


def test_an_export_reads_and_checks_its_routine_once(tmp_path, monkeypatch, no_early_helper):
    # The early helper's look at the routine is the one the command goes on with.
    from typer.testing import CliRunner

    import coach.routine
    from coach.cli import app

    reads = []
    real = coach.routine.load_routine
    monkeypatch.setattr(coach.routine, "load_routine", lambda name=None: (reads.append(name), real(name))[1])
    result = CliRunner().invoke(app, ["export", "leg-stretches", "-o", str(tmp_path / "s.txt")])
    assert result.exit_code == 0, result.output
    assert reads == ["leg-stretches"]
    assert (tmp_path / "s.txt").read_text().startswith("Leg Stretches for Hips and Back\n")
