"""The live player in simulated time: a fake clock and sleep, a MemorySink, scripted keys.

A 10-minute session runs in milliseconds; every play call's time is compared with the
timeline's plan, exactly (to float rounding), after pauses, skips and jumps.
"""

from __future__ import annotations

import io
import os
import random
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from coach import live, player as player_module, signals
from coach.audio import SAMPLE_RATE
from coach.display import LiveDisplay, LogDisplay, format_clock
from coach.errors import AudioOutputError, UsageError
from coach.live import SessionStopped, continue_command, run_live, stopped_message
from coach.mixer import mix_segment, segments
from coach.player import BACK_GRACE, FixedPlan, Listener, Player, Status, find_section
from coach.routine import load_routine
from coach.session import Session, SessionOptions
from coach.sinks import CaptionSink, MemorySink
from coach.timeline import Section, build_timeline, spoken_texts

SHORT = Path(__file__).parent / "data" / "short.toml"
T0 = 1000.0  # the simulated clock's reading when the session starts
CHIME_SECONDS = {"hold_start": 1.0, "midpoint": 0.7, "side_switch": 1.2}


def _clip(seconds: float, level: float) -> np.ndarray:
    """A recognisable fake clip: a ramp from `level`, so any offset into it shows."""
    n = int(round(seconds * SAMPLE_RATE))
    return (level + 0.1 * np.linspace(0, 1, n, endpoint=False)).astype(np.float32)


def make_session(routine: str | Path = SHORT, **options) -> Session:
    """A session with fake speech (length grows with the text) and fake chimes: no synthesis."""
    loaded = load_routine(routine)
    opts = SessionOptions(**options)
    texts = spoken_texts(loaded, opts.timeline_options)
    speech = {t: _clip(0.4 + 0.05 * len(t), 0.1 + 0.01 * (i % 20)) for i, t in enumerate(texts)}
    chimes = {k: _clip(s, 0.5 + 0.1 * i) for i, (k, s) in enumerate(CHIME_SECONDS.items())}
    timeline = build_timeline(loaded, {t: len(c) for t, c in speech.items()},
                              {k: len(c) for k, c in chimes.items()}, opts.timeline_options)
    return Session(loaded, opts, timeline, speech, chimes)


class SimTime:
    """A clock that only moves when slept; a scripted key press wakes a sleeper at its time."""

    def __init__(self, keys=(), jitter: float = 0.0, at: dict | None = None, suspend: dict | None = None) -> None:
        self.now = T0
        self.keys = sorted((T0 + t, k) for t, k in keys)
        self.sleeps: list[float] = []
        self.jitter = jitter  # oversleep by up to this many seconds, like a busy machine
        self.actions = sorted((T0 + t, f) for t, f in (at or {}).items())
        self.rng = random.Random(4)
        self.suspend = sorted((T0 + t, d) for t, d in (suspend or {}).items())  # the process stopped

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        target = self.now + seconds
        if self.keys and self.keys[0][0] < target:
            target = max(self.now, self.keys[0][0])
        elif self.jitter:
            target += self.rng.uniform(0, self.jitter)
        if self.suspend and self.suspend[0][0] <= target:
            target += self.suspend.pop(0)[1]
        if self.actions and self.actions[0][0] <= target:
            self.now, action = self.actions.pop(0)
            action()
        self.now = target

    def key(self) -> str | None:
        if self.keys and self.keys[0][0] <= self.now:
            return self.keys.pop(0)[1]
        return None


class Recorder(Listener):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Status]] = []

    def event(self, event, status):
        self.calls.append(("event", status))

    def paused(self, status):
        self.calls.append(("paused", status))

    def resumed(self, status):
        self.calls.append(("resumed", status))

    def moved(self, status):
        self.calls.append(("moved", status))


def play(session: Session, sim: SimTime, start: int = 0, listener=None, sink=None):
    segs = segments(session.timeline)
    buffers = [mix_segment(s, session.speech, session.chimes) for s in segs]
    sink = sink or MemorySink(sim.clock)
    player = Player(session.timeline, segs, buffers, sink, clock=sim.clock, sleep=sim.sleep,
                    keys=sim.key, listener=listener)
    stop = player.run(start)
    return stop, sink, segs, buffers


def planned(segs, shift: float = 0.0, start: int = 0):
    return [T0 + shift + (s.start - start) / SAMPLE_RATE for s in segs]


def times(sink: MemorySink, after: float = float("-inf")) -> list[float]:
    return [t for t, _ in sink.plays if t >= after]


def seg_at(segs, sample: int):
    return next(i for i, s in enumerate(segs) if s.start == sample)


# --- on time ----------------------------------------------------------------------------

def test_every_segment_plays_at_its_planned_time_in_order_with_its_audio():
    session = make_session("leg-stretches", hold=90)  # about ten minutes
    assert session.timeline.length_s > 600
    sim = SimTime()
    stop, sink, segs, buffers = play(session, sim)

    assert times(sink) == pytest.approx(planned(segs), abs=1e-9)
    for (_, played), buffer in zip(sink.plays, buffers):
        np.testing.assert_array_equal(played, buffer)
    assert stop.reason == "end"
    assert sim.now == pytest.approx(T0 + session.timeline.length_s, abs=1e-9)
    # No polling: with no keys to read and no display, one sleep per deadline at most.
    assert len(sim.sleeps) <= len(segs) + len(session.timeline.events) + 1


def test_late_wake_ups_do_not_add_up():
    session = make_session("leg-stretches", hold=90)
    sim = SimTime(jitter=0.02)
    _, sink, segs, _ = play(session, sim)
    errors = np.array(times(sink)) - np.array(planned(segs))
    assert errors.min() >= 0
    assert errors.max() <= 0.02 + 1e-9  # each late by one wake-up at most, never the sum
    assert len(segs) > 40  # with relative sleeps this would drift by ~0.4 s


def test_on_first_sound_is_called_once_as_the_first_sound_is_handed_to_the_sink():
    # A live session's speech worker waits for it (SpeechAhead hold_after_first).
    session = make_session("leg-stretches")
    sim = SimTime()
    segs = segments(session.timeline)
    buffers = [mix_segment(s, session.speech, session.chimes) for s in segs]
    sink = MemorySink(sim.clock)
    calls: list[int] = []
    player = Player(session.timeline, segs, buffers, sink, clock=sim.clock, sleep=sim.sleep,
                    on_first_sound=lambda: calls.append(len(sink.plays)))
    player.run(0)
    assert calls == [1]  # once, right after the first sound was handed over
    assert len(sink.plays) == len(segs) > 1


# --- a sink that is handed sounds ahead (miniaudio) ---------------------------------------

LEAD = 0.8


def test_a_sink_with_a_lead_is_handed_each_sound_ahead_with_its_exact_time_despite_late_wake_ups():
    session = make_session("leg-stretches", hold=90)
    sim = SimTime(jitter=0.3)  # wake-ups up to 0.3 s late: too late for a sound played at its deadline
    _, sink, segs, _ = play(session, sim, sink=MemorySink(sim.clock, lead=LEAD))
    assert times(sink) == pytest.approx(planned(segs), abs=1e-9)
    ahead = [due - handed for (due, _), handed in zip(sink.plays, sink.handed)][1:]
    assert min(ahead) >= LEAD - 0.3 - 1e-9 and max(ahead) <= LEAD + 1e-9


def test_pausing_before_a_sound_handed_ahead_takes_it_back_and_it_plays_after_the_pause():
    session = make_session()
    segs = segments(session.timeline)
    section = session.timeline.sections[0]
    k = next(i for i, s in enumerate(segs) if s.start > section.hold_start)  # the midpoint chime
    pause_at = segs[k].start / SAMPLE_RATE - LEAD / 2  # after it was handed over, before it is due
    sim = SimTime(keys=[(pause_at, " "), (pause_at + 5, " ")])
    _, sink, segs, _ = play(session, sim, sink=MemorySink(sim.clock, lead=LEAD))
    assert times(sink) == pytest.approx(planned(segs)[:k] + planned(segs, shift=5)[k:], abs=1e-9)


def test_a_volume_change_on_a_sink_with_a_lead_hands_the_next_sound_over_again_at_the_new_volume():
    session = make_session()
    segs = segments(session.timeline)
    k = 3
    press = segs[k].start / SAMPLE_RATE - LEAD / 2  # the next sound was handed over already
    assert press * SAMPLE_RATE > segs[k - 1].end  # in silence: nothing to splice now
    sim = SimTime(keys=[(press, "9")])
    sink = MemorySink(sim.clock, lead=LEAD)
    _, _, _, buffers = play(session, sim, sink=sink)
    assert times(sink) == pytest.approx(planned(segs), abs=1e-9)
    due, played = sink.plays[k]
    np.testing.assert_allclose(played, buffers[k] * np.float32(0.9), rtol=1e-6)


def test_a_silent_hold_is_one_sleep():
    session = make_session()
    section = session.timeline.sections[0]
    sim = SimTime()
    play(session, sim)
    hold_start = T0 + section.hold_start / SAMPLE_RATE
    # Between the hold-start chime and the midpoint chime nothing happens: one sleep.
    midpoint = hold_start + section.hold_length / 2 / SAMPLE_RATE
    assert any(s == pytest.approx(midpoint - hold_start) for s in sim.sleeps)


def test_events_are_announced_at_their_times_after_their_sound():
    session = make_session()
    sim = SimTime()
    announced = []

    class Spy(Listener):
        def event(self, event, status):
            announced.append((sim.now, event))

    stop, sink, segs, _ = play(session, sim, listener=Spy())
    assert [e for _, e in announced] == list(session.timeline.events)
    for now, event in announced:
        assert now == pytest.approx(T0 + event.start_s, abs=1e-9)


# --- pause and resume ---------------------------------------------------------------------

def test_pause_mid_sound_shifts_everything_after_by_the_pause_and_resumes_at_the_offset():
    session = make_session()
    segs = segments(session.timeline)
    section = session.timeline.sections[1]
    k = seg_at(segs, section.start)  # the setup speech of pose 2
    pause_at = section.start / SAMPLE_RATE + 0.3
    assert pause_at * SAMPLE_RATE < segs[k].end
    sim = SimTime(keys=[(pause_at, " "), (pause_at + 7, " ")])
    listener = Recorder()
    stop, sink, segs, buffers = play(session, sim, listener=listener)

    assert T0 + pause_at in sink.stops
    before = [(t, p) for t, p in sink.plays if t < T0 + pause_at]
    assert [t for t, _ in before] == pytest.approx(planned(segs)[: k + 1], abs=1e-9)
    resume_time, resumed = [(t, p) for t, p in sink.plays if t >= T0 + pause_at][0]
    assert resume_time == pytest.approx(T0 + pause_at + 7, abs=1e-9)
    offset = round(pause_at * SAMPLE_RATE) - segs[k].start
    np.testing.assert_array_equal(resumed, buffers[k][offset:])
    later = times(sink, after=resume_time + 1e-6)
    assert later == pytest.approx(planned(segs, shift=7)[k + 1:], abs=1e-9)
    assert sim.now == pytest.approx(T0 + 7 + session.timeline.length_s, abs=1e-9)
    kinds = [kind for kind, _ in listener.calls if kind != "event"]
    assert kinds == ["paused", "resumed"]
    paused_status = next(s for kind, s in listener.calls if kind == "paused")
    assert paused_status.paused and paused_status.section == section
    assert paused_status.position == pytest.approx(pause_at)


def test_a_pause_before_the_first_sound_announces_the_first_line_and_plays_it_whole_after_it():
    # A real clock moves on while the player starts: a space typed while coach was loading is
    # read a fraction of a millisecond after the start, before the first sound has fired.
    class Ticking(SimTime):
        def clock(self) -> float:
            self.now += 1e-4
            return self.now

    session = make_session()
    sim = Ticking(keys=[(0.0, " "), (3.0, " ")])
    announced = []

    class Spy(Listener):
        def event(self, event, status):
            announced.append(event)

    _, sink, segs, buffers = play(session, sim, listener=Spy())
    first = session.timeline.events[0]
    assert first.kind == "speech" and first.start == 0
    assert announced[0] == first  # the first line was shown (a caption, with no device)
    np.testing.assert_array_equal(sink.plays[0][1], buffers[0])  # from its beginning


def test_pause_in_silence_plays_nothing_until_the_next_planned_sound():
    session = make_session()
    segs = segments(session.timeline)
    section = session.timeline.sections[0]
    pause_at = section.hold_start / SAMPLE_RATE + 1.5  # after the 1-s chime, before the midpoint
    sim = SimTime(keys=[(pause_at, " "), (pause_at + 7, " ")])
    _, sink, segs, _ = play(session, sim)
    k = sum(1 for s in segs if s.start < pause_at * SAMPLE_RATE)
    assert times(sink) == pytest.approx(planned(segs)[:k] + planned(segs, shift=7)[k:], abs=1e-9)


def test_quit_stops_the_sound_and_says_where():
    session = make_session()
    section = session.timeline.sections[2]
    quit_at = section.hold_start / SAMPLE_RATE + 0.5
    sim = SimTime(keys=[(quit_at, "q")])
    stop, sink, segs, _ = play(session, sim)
    assert stop.reason == "quit"
    assert stop.section == section
    assert stop.position == pytest.approx(quit_at)
    assert sink.stops[-1] == pytest.approx(T0 + quit_at)
    assert max(times(sink)) <= T0 + quit_at
    assert sim.now == pytest.approx(T0 + quit_at)


# --- skip and back ------------------------------------------------------------------------

def _after_jump(session, key_at, key):
    sim = SimTime(keys=[(key_at, key)])
    listener = Recorder()
    _, sink, segs, buffers = play(session, sim, listener=listener)
    moved = [s for kind, s in listener.calls if kind == "moved"]
    return sink, segs, buffers, moved


@pytest.mark.parametrize("key_in, key, lands_on", [
    ("hold 0", "n", 1),          # next pose
    ("intro", "n", 0),           # from the intro to the first pose
    ("hold 1", "n", 2),          # to the first pose of the other side (the side switch is its start)
    (f"start 2 +{BACK_GRACE - 2}", "b", 1),  # within BACK_GRACE of a start: the previous pose
    (f"start 2 +{BACK_GRACE + 2}", "b", 2),  # later: this pose from its start
    ("start 0 +1", "b", None),   # back from the first pose: the intro
])
def test_skip_and_back_land_on_section_starts(key_in, key, lands_on):
    session = make_session()
    sections = session.timeline.sections
    where, number = key_in.split(" ", 1) if " " in key_in else (key_in, "")
    if where == "intro":
        key_at = 0.5
    elif where == "hold":
        key_at = sections[int(number)].hold_start / SAMPLE_RATE + 1.5
    else:
        index, plus = number.split(" +")
        key_at = sections[int(index)].start / SAMPLE_RATE + float(plus)
    sink, segs, buffers, moved = _after_jump(session, key_at, key)

    target = sections[lands_on].start if lands_on is not None else 0
    k = seg_at(segs, target)
    key_time = T0 + key_at
    assert sink.stops and sink.stops[0] == pytest.approx(key_time)
    after = [(t, p) for t, p in sink.plays if t >= key_time]
    np.testing.assert_array_equal(after[0][1], buffers[k])
    shift = key_at - target / SAMPLE_RATE
    assert [t for t, _ in after] == pytest.approx(planned(segs, shift=shift)[k:], abs=1e-9)
    assert len(moved) == 1
    assert moved[0].section == (sections[lands_on] if lands_on is not None else None)


def test_next_in_the_last_pose_goes_to_the_closing_words():
    session = make_session()
    last = session.timeline.sections[-1]
    key_at = last.hold_start / SAMPLE_RATE + 1.5
    sink, segs, buffers, moved = _after_jump(session, key_at, "n")
    outro = segs[-1]
    after = times(sink, after=T0 + key_at)
    assert after == pytest.approx([T0 + key_at + (outro.start - last.end) / SAMPLE_RATE], abs=1e-9)


def test_skip_while_paused_stays_paused_at_the_new_place():
    session = make_session()
    sections = session.timeline.sections
    pause_at = sections[0].hold_start / SAMPLE_RATE + 1.5
    sim = SimTime(keys=[(pause_at, " "), (pause_at + 2, "n"), (pause_at + 10, " ")])
    _, sink, segs, buffers = play(session, sim)
    k = seg_at(segs, sections[1].start)
    after = times(sink, after=T0 + pause_at)
    assert after[0] == pytest.approx(T0 + pause_at + 10)
    shift = pause_at + 10 - sections[1].start / SAMPLE_RATE
    assert after == pytest.approx(planned(segs, shift=shift)[k:], abs=1e-9)


# --- --from ----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, index", [
    ("1", 0), ("2", 1), ("leg across", 1), ("LEG ACROSS", 1), ("Leg across:left", 3),
    ("leg up:LEFT", 2), ("2:right", 1), ("  leg   across ", 1), ("Leg a", 1),
])
def test_from_finds_the_pose_by_number_or_name_and_side(spec, index):
    timeline = make_session().timeline
    assert find_section(timeline, spec) == timeline.sections[index]


def test_from_without_side_takes_the_side_the_session_starts_with():
    timeline = make_session(start_side="left").timeline
    section = find_section(timeline, "leg across")
    assert section.side == "left"
    assert section == timeline.sections[1]


@pytest.mark.parametrize("spec, says", [
    ("twist", ['1 "Leg up"', '2 "Leg across"']),
    ("3", ['1 "Leg up"', '2 "Leg across"']),
    ("leg", ["several poses", '1 "Leg up"', '2 "Leg across"']),
    ("leg up:middle", ["unknown side", "right, left"]),
])
def test_from_unknown_pose_lists_the_choices(spec, says):
    with pytest.raises(UsageError) as err:
        find_section(make_session().timeline, spec)
    for text in says:
        assert text in str(err.value)
    assert err.value.exit_code == 2


def test_from_a_side_of_a_pose_done_once_says_so_and_what_to_write(tmp_path):
    path = tmp_path / "once.toml"
    path.write_text('title = "T"\n[[poses]]\nname = "Knees to chest"\nsides = []\nhold = 5\n'
                    '[[poses]]\nname = "Twist"\nhold = 5\n')
    with pytest.raises(UsageError) as err:
        find_section(make_session(path).timeline, "knees to chest:left")
    assert str(err.value) == ("--from 'knees to chest:left': pose 1 (Knees to chest) is done once, on no side; "
                              "use --from 1")


@pytest.mark.parametrize("spec, pose, side", [
    ("Stretch: hamstrings", 1, "right"), ("stretch:  HAMSTRINGS", 1, "right"),
    ("Stretch: hamstrings:left", 1, "left"), ("stretch:left", 1, "left"), ("2:left", 2, "left"),
])
def test_from_a_pose_whose_name_holds_a_colon(tmp_path, spec, pose, side):
    # "Stretch: hamstrings" was read as the pose "Stretch" on the side "hamstrings": an error.
    path = tmp_path / "colon.toml"
    path.write_text('title = "T"\n[[poses]]\nname = "Stretch: hamstrings"\nhold = 5\n'
                    '[[poses]]\nname = "Twist"\nhold = 5\n')
    section = find_section(make_session(path).timeline, spec)
    assert (section.pose_number, section.side) == (pose, side)


def test_playing_from_a_section_skips_everything_before_it():
    session = make_session()
    section = find_section(session.timeline, "leg across:left")
    sim = SimTime()
    _, sink, segs, buffers = play(session, sim, start=section.start)
    k = seg_at(segs, section.start)
    assert times(sink) == pytest.approx(planned(segs, start=section.start)[k:], abs=1e-9)
    np.testing.assert_array_equal(sink.plays[0][1], buffers[k])


# --- run_live: captions, device lost, signals -------------------------------------------------

class TimedStream(io.StringIO):
    """stdout that remembers the simulated time each line was written."""

    def __init__(self, sim: SimTime) -> None:
        super().__init__()
        self.sim = sim
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line:  # print() writes the newline on its own
                self.lines.append((self.sim.now, line))
        return super().write(text)


def _live(session, sim, monkeypatch, sink_or_error, **kwargs):
    opened = []

    def fake_open_sink(backend=None, volume=1.0):
        opened.append(backend)
        if isinstance(sink_or_error, Exception):
            raise sink_or_error
        return sink_or_error

    monkeypatch.setattr(live, "open_sink", fake_open_sink)
    out = TimedStream(sim)
    stop = run_live(session, quiet=True, stdin=io.StringIO(), stdout=out, clock=sim.clock,
                    sleep=sim.sleep, **kwargs)
    return stop, out, opened


NO_DEVICE = AudioOutputError("no audio output: Error opening PCM device (no sound card?). "
                             "Use `coach export -o session.wav` to play it elsewhere.")


def test_no_device_continues_on_time_as_captions_with_one_warning(monkeypatch, capsys):
    session = make_session()
    sim = SimTime()
    stop, out, _ = _live(session, sim, monkeypatch, NO_DEVICE)
    assert stop.reason == "end"
    assert sim.now == pytest.approx(T0 + session.timeline.length_s)
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith("Warning: no audio output") and "coach export -o session.wav" in warnings[0]
    assert "captions" in warnings[0]
    spoken = [e for e in session.timeline.events if e.kind == "speech"]
    captions = [(t, line) for t, line in out.lines if any(line.endswith(": " + e.text) for e in spoken)]
    assert len(captions) == len(spoken)
    for (t, line), event in zip(captions, spoken):
        assert t == pytest.approx(T0 + event.start_s)  # printed when it would be spoken
        assert line.endswith(event.text)


def test_no_device_with_require_audio_is_an_error(monkeypatch):
    with pytest.raises(AudioOutputError) as err:
        _live(make_session(), SimTime(), monkeypatch, NO_DEVICE, require_audio=True)
    assert err.value.exit_code == 3


def test_device_lost_mid_session_goes_on_as_captions(monkeypatch, capsys):
    session = make_session()
    sim = SimTime()
    lost_at = session.timeline.sections[1].start / SAMPLE_RATE + 0.01
    sink = MemorySink(sim.clock, fails_from=T0 + lost_at)
    stop, out, _ = _live(session, sim, monkeypatch, sink)
    assert stop.reason == "end"
    assert sim.now == pytest.approx(T0 + session.timeline.length_s)
    segs = segments(session.timeline)
    assert times(sink) == pytest.approx([t for t in planned(segs) if t < T0 + lost_at], abs=1e-9)
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1 and "removed" in warnings[0] and "captions" in warnings[0]
    outro = [e for e in session.timeline.events if e.part == "outro"][0]
    assert (pytest.approx(T0 + outro.start_s), f"[{format_clock(outro.start_s)}] outro: {outro.text}") in out.lines


def test_device_lost_with_require_audio_is_an_error(monkeypatch):
    session = make_session()
    sim = SimTime()
    sink = MemorySink(sim.clock, fails_from=T0 + 5)
    with pytest.raises(AudioOutputError):
        _live(session, sim, monkeypatch, sink, require_audio=True)


def test_a_speed_key_in_a_session_fitted_to_minutes_says_once_why_the_speed_stays(monkeypatch):
    session = make_session(minutes=1.0)  # a built session: its holds fitted at its one speed
    notes = []

    class Notes(Listener):
        def note(self, text):
            notes.append(text)

    sim = SimTime(keys=[(1.0, "-"), (2.0, "-"), (3.0, "+")])
    player = Player.of(live.live_plan(session), MemorySink(sim.clock), clock=sim.clock, sleep=sim.sleep,
                       keys=sim.key, listener=Notes())
    player.run()
    assert player.plan.speed == 1.0 and not player.changed_settings
    assert len(notes) == 1 and "--minutes" in notes[0] and "--speed" in notes[0]


class _WarningsArrive(FixedPlan):
    """A plan whose timeline's warnings come one at a time, as a live session's do as it grows.
    A speed key rebuilds it: they come again, with one more it leaves out."""

    def __init__(self, session: Session) -> None:
        segs = segments(session.timeline)
        super().__init__(session.timeline, segs, [mix_segment(s, session.speech, session.chimes) for s in segs])
        self.all = session.timeline.warnings
        self.timeline = replace(session.timeline, warnings=())

    def refresh(self, urgent: bool = False) -> bool:
        shown = len(self.timeline.warnings)
        if shown == len(self.all):
            return False
        # After a rebuild they come back all at once here: the session is further on by then.
        self.timeline = replace(self.timeline, warnings=self.all[:len(self.all) if self.speed != 1.0 else shown + 1])
        return True

    def set_speed(self, speed: float, at: int) -> bool:
        self.speed = speed
        self.all += (f"a cue left out at speed {speed:g}",)
        self.timeline = replace(self.timeline, warnings=())
        return True


def test_cues_left_out_as_the_session_grows_are_said_once_a_few_by_name_then_one_line():
    session = make_session("leg-stretches", hold=1)  # every cue left out: 18 warnings
    warnings = session.timeline.warnings
    assert len(warnings) > 10
    notes = []

    class Notes(Listener):
        def note(self, text):
            notes.append(text)

    sim = SimTime(keys=[(150.0, "-")])  # once every warning has come
    Player(None, plan=_WarningsArrive(session), sink=MemorySink(sim.clock), clock=sim.clock, sleep=sim.sleep,
           keys=sim.key, listener=Notes()).run()
    # After the speed key only what it left out anew, said: the others were said (or summed up) already.
    assert notes == [*warnings[:2], player_module.MORE_LEFT_OUT, "a cue left out at speed 0.9"]


def test_bad_from_is_reported_before_any_device_is_opened(monkeypatch):
    opened = []
    monkeypatch.setattr(live, "open_sink", lambda *a, **k: opened.append(1))
    with pytest.raises(UsageError):
        run_live(make_session(), from_pose="twist", quiet=True, stdin=io.StringIO(), stdout=io.StringIO())
    assert opened == []


def test_from_in_run_live_starts_there(monkeypatch):
    session = make_session()
    sim = SimTime()
    sink = MemorySink(sim.clock)
    _, out, _ = _live(session, sim, monkeypatch, sink, from_pose="2:left")
    section = session.timeline.sections[3]
    first_event = out.lines[1][1]
    assert first_event.startswith("[00:") and "Leg across (left)" in first_event
    segs = segments(session.timeline)
    assert times(sink) == pytest.approx(planned(segs, start=section.start)[seg_at(segs, section.start):],
                                        abs=1e-9)


@pytest.mark.parametrize("signum, code, said", [(signal.SIGINT, 130, "Stopped at"),
                                                 (signal.SIGTERM, 143, "Stopped (terminated) at"),
                                                 (signal.SIGHUP, 129, "Stopped (hung up) at"),
                                                 (signal.SIGQUIT, 131, "Stopped (quit signal) at")])
def test_signal_stops_the_sound_at_once_and_says_how_to_continue(monkeypatch, signum, code, said):
    session = make_session(hold=8)
    section = session.timeline.sections[0]
    stop_at = section.hold_start / SAMPLE_RATE + 0.2  # while the hold-start chime rings
    sim = SimTime(at={stop_at: lambda: os.kill(os.getpid(), signum)})
    sink = MemorySink(sim.clock)
    before = [signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)]
    with pytest.raises(SessionStopped) as err:
        _live(session, sim, monkeypatch, sink)
    assert err.value.exit_code == code
    assert sink.stops[0] == pytest.approx(T0 + stop_at)  # silenced before anything else
    message = err.value.message
    assert message.startswith(f"{said} 00:{int(stop_at):02d} in Leg up (right).")
    assert '--from "Leg up:right"' in message and "--hold 8" in message and str(SHORT.name) in message
    assert [signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)] == before


class SecondCtrlCSink(MemorySink):
    """A device whose stop and close are each hit by another Ctrl-C, as when someone presses
    it twice: the clean-up must still run to its end."""

    def __init__(self, clock) -> None:
        super().__init__(clock)
        self.closed = False

    def stop(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        super().stop()

    def close(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        self.closed = True  # what a real device does here: let go of the sound card


def test_a_second_ctrl_c_during_the_clean_up_neither_cuts_it_short_nor_loses_where_it_stopped(monkeypatch):
    session = make_session(hold=8)
    section = session.timeline.sections[0]
    stop_at = section.hold_start / SAMPLE_RATE + 0.2
    sim = SimTime(at={stop_at: lambda: os.kill(os.getpid(), signal.SIGINT)})
    sink = SecondCtrlCSink(sim.clock)
    with signals.as_exceptions():  # as coach's main() has them, around run_live's own
        with pytest.raises(SessionStopped) as err:
            _live(session, sim, monkeypatch, sink)
        assert isinstance(signals.recorded_stop(), KeyboardInterrupt)  # kept for the exit code, not lost
    assert err.value.exit_code == 130 and err.value.message.startswith("Stopped at")
    assert sink.stops and sink.closed


def test_a_signal_raises_again_once_the_first_stop_is_no_longer_being_handled():
    with signals.as_exceptions():
        try:
            with pytest.raises(KeyboardInterrupt):
                try:
                    signal.raise_signal(signal.SIGINT)
                finally:
                    signal.raise_signal(signal.SIGINT)  # during the unwinding: recorded only
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)  # a later one (the first dropped, say) stops again
        finally:
            signals.forget()


def test_stopped_message_in_the_intro_and_the_closing_words():
    session = make_session()
    assert "in the introduction" in stopped_message(session, 0.5, None)
    assert "--from" not in stopped_message(session, 0.5, None)
    last = session.timeline.sections[-1]
    closing = stopped_message(session, last.end / SAMPLE_RATE + 1, last)
    assert "in the closing words" in closing and "To play it again: coach start" in closing
    assert "--from" not in closing  # from the last pose would play it again


def test_continue_command_names_a_builtin_routine_by_name():
    session = make_session("leg-stretches", start_side="left")
    command = continue_command(session, session.timeline.sections[0])
    assert command == 'coach start leg-stretches --side left --from "Leg up:left"'


# --- displays ----------------------------------------------------------------------------------

def _render(display: LiveDisplay, status: Status) -> str:
    console = Console(width=100, file=io.StringIO(), force_terminal=False, color_system=None)
    console.print(display.render(status))
    return console.file.getvalue()


def test_live_display_shows_pose_hold_left_next_time_and_keys():
    session = make_session()
    sections = session.timeline.sections
    display = LiveDisplay(session.timeline, session.routine.title, Console(file=io.StringIO()))
    position = sections[0].hold_start / SAMPLE_RATE + 1.5
    text = _render(display, Status(position, False, sections[0]))
    assert "Short test routine" in text
    assert "Leg up (right)" in text
    assert "3 s left" in text  # a 4-s hold, 1.5 s in
    assert "Leg across (right)" in text  # next
    assert f"/ 00:{int(session.timeline.length_s):02d}" in text
    assert "space" in text and "n next" in text and "b back" in text and "q quit" in text
    assert "PAUSED" not in text
    assert "PAUSED" in _render(display, Status(position, True, sections[0]))
    assert "Introduction" in _render(display, Status(0.5, False, None))


def test_after_n_or_b_the_panel_no_longer_shows_the_line_said_before_the_jump():
    session = make_session()
    first, second = session.timeline.sections[:2]
    paused_at = first.start / SAMPLE_RATE + 0.2  # in the first pose's setup line
    sim = SimTime(keys=[(paused_at, " "), (paused_at + 1, "n"), (paused_at + 2, "q")])
    console = Console(width=100, height=40, file=io.StringIO(), force_terminal=False, color_system=None)
    display = LiveDisplay(session.timeline, session.routine.title, console)
    with display:
        play(session, sim, listener=display)
        shown = _render(display, display._last)
    assert "Leg across (right)" in shown and "PAUSED" in shown
    assert "Lift your right leg." not in shown  # the first pose's line, said before n
    assert "Cross your right leg over." in shown  # what is said where n went
    last = session.timeline.sections[-1]
    display.moved(Status(last.end / SAMPLE_RATE + 0.01, False, last))  # n into the closing words
    assert "Lift your" not in _render(display, display._last) and "Cross your" not in _render(display, display._last)


def _panel_lines(width: int, height: int, paused: bool = False) -> tuple[list[str], Session]:
    """The panel 1.5 s into the first hold, drawn on a terminal of width x height."""
    session = make_session()
    section = session.timeline.sections[0]
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=False, color_system=None)
    display = LiveDisplay(session.timeline, session.routine.title, console)
    display.now = "Keep your pelvis anchored and heavy on the mat, and breathe."
    console.print(display.render(Status(section.hold_start / SAMPLE_RATE + 1.5, paused, section)))
    return console.file.getvalue().splitlines(), session


@pytest.mark.parametrize("width, height, shown, left_out", [
    (100, 40, ["Pose", "Hold", "Now", "Next", "Time", "Voice", "n next pose"], []),
    (40, 12, ["Pose", "Hold", "Now", "Next", "Time", "Voice", "h keys aloud"], ["n next pose"]),
    (40, 10, ["Pose", "Hold", "Now", "Next", "Time"], ["Voice", "keys aloud"]),
    (30, 8, ["Pose", "Now", "Time", "Keep your pelvis"], ["Next", "Voice", "keys aloud", "breathe"]),
])
def test_the_live_panel_fits_a_small_terminal_and_keeps_the_clock(width, height, shown, left_out):
    lines, _ = _panel_lines(width, height)
    assert len(lines) <= height - 1 and lines[-1].startswith("╰")  # the whole panel, bottom border too
    assert max(len(line) for line in lines) <= width
    text = "\n".join(lines)
    for word in shown:
        assert word in text, word
    for word in left_out:
        assert word not in text, word
    assert "3 s left" in text and "━" in text or width < 40


@pytest.mark.parametrize("width, height", [(20, 4), (30, 6), (80, 3), (12, 2)])
def test_a_terminal_too_small_for_the_panel_still_shows_the_clock_first(width, height):
    lines, session = _panel_lines(width, height, paused=True)
    section = session.timeline.sections[0]
    assert 1 <= len(lines) <= height - 1 and max(len(line) for line in lines) <= width
    clock = f"{format_clock(section.hold_start / SAMPLE_RATE + 1.5)}/{format_clock(session.timeline.length_s)}"
    assert lines[0].startswith(clock)
    if height > 2:
        assert lines[1].startswith("Leg up") and ("s left" in lines[1] or lines[1].endswith("…"))


def test_log_display_writes_one_plain_line_per_event():
    session = make_session()
    out = io.StringIO()
    display = LogDisplay(session.timeline, session.routine.title, out)
    for event in session.timeline.events:
        display.event(event, Status(event.start_s, False, None))
    lines = out.getvalue().splitlines()
    audible = session.timeline.audible()
    assert len(lines) == len(audible)
    chime = next(e for e in audible if e.part == "midpoint")
    assert f"[00:{int(chime.start_s):02d}] Leg up (right): (chime: midpoint)" in lines
    assert "\x1b" not in out.getvalue()


def test_log_display_whose_reader_went_away_stays_quiet_and_the_session_plays_on():
    # `coach start --quiet | head -3`: a BrokenPipeError ended the session at once (click's
    # exit 1, nothing said). The lines go nowhere, as with stdout closed from the start.
    session = make_session()
    r, w = os.pipe()
    os.close(r)
    with open(w, "w", closefd=True) as stream:
        display = LogDisplay(session.timeline, session.routine.title, stream)
        with display:
            for event in session.timeline.events:
                display.event(event, Status(event.start_s, False, None))
        display.note("still here")


def test_caption_sink_is_what_a_missing_device_becomes(monkeypatch, capsys):
    def no_device(*args, **kwargs):
        raise NO_DEVICE

    monkeypatch.setattr(live, "open_sink", no_device)
    sink, reason = live.open_output(None, require_audio=False)
    assert isinstance(sink, CaptionSink) and reason is NO_DEVICE
    assert capsys.readouterr().err == ""  # warned about once the session sounds (run_live)


def test_a_display_is_refreshed_a_few_times_a_second_during_a_hold():
    session = make_session()
    section = session.timeline.sections[0]
    sim = SimTime()
    ticks = []

    class Display(Listener):
        refresh = 0.2

        def tick(self, status):
            ticks.append(sim.now)

    play(session, sim, listener=Display())
    hold_start = T0 + section.hold_start / SAMPLE_RATE
    in_hold = [t for t in ticks if hold_start <= t < hold_start + section.hold_length / SAMPLE_RATE]
    assert len(in_hold) >= 4 / 0.2 - 1
    assert max(np.diff(in_hold)) <= 0.2 + 1e-9
    assert max(sim.sleeps) <= 0.2 + 1e-9


def test_after_being_stopped_for_a_while_it_carries_on_where_it_was():
    session = make_session()
    stopped_at = session.timeline.sections[0].hold_start / SAMPLE_RATE + 1.5
    sim = SimTime(suspend={stopped_at: 30.0})  # like Ctrl-Z, then `fg` 30 s later
    _, sink, segs, _ = play(session, sim)
    k = sum(1 for s in segs if s.start < stopped_at * SAMPLE_RATE)
    assert times(sink)[:k] == pytest.approx(planned(segs)[:k], abs=1e-9)
    after = times(sink)[k:]
    late = after[0] - planned(segs)[k]
    assert late > 29  # the next sound came when the process woke up...
    assert after == pytest.approx(planned(segs, shift=late)[k:], abs=1e-9)  # ...the rest kept its spacing


@pytest.mark.parametrize("stopped_for", [0.4, 2.0, 30.0])
@pytest.mark.parametrize("lead", [0.0, 0.8])
def test_after_ctrl_z_and_fg_it_goes_on_from_where_it_stopped_and_no_hold_loses_time(stopped_for, lead):
    # The process stood still (and so did the device's clock, by its own amount): the keys
    # say when it stopped, and the session goes on as after a pause of that length.
    from coach.keys import Resumed

    session = make_session(hold=8)
    section = session.timeline.sections[0]
    # In the first hold, in the silence between its start chime and its midpoint chime.
    gap_start = max(s.end for s in segments(session.timeline) if s.start <= section.hold_start)
    assert gap_start < section.hold_start + section.hold_length // 2 - SAMPLE_RATE
    stopped_at = gap_start / SAMPLE_RATE + 0.5

    class StopAndGo(SimTime):
        told = False

        def key(self):
            if not self.told and self.now >= T0 + stopped_at + stopped_for:
                self.told = True
                return Resumed(T0 + stopped_at, T0 + stopped_at + stopped_for)
            return super().key()

    sim = StopAndGo(suspend={stopped_at: stopped_for})
    sink = MemorySink(sim.clock, lead=lead)
    _, sink, segs, _ = play(session, sim, sink=sink)
    k = sum(1 for s in segs if s.start < stopped_at * SAMPLE_RATE)
    assert times(sink)[:k] == pytest.approx(planned(segs)[:k], abs=1e-6)
    assert times(sink)[k:] == pytest.approx(planned(segs, shift=stopped_for)[k:], abs=1e-6)


def test_continue_command_repeats_what_shapes_the_session_and_quotes_safely():
    session = make_session(hold=8, speed=0.8, countdown=3)
    command = continue_command(session, session.timeline.sections[3])
    assert command.endswith('--hold 8 --speed 0.8 --countdown 3 --from "Leg across:left"')
    odd = Section(0, 2, 'Say "$HOME"', "left", 0, 1, 0, 1)
    assert continue_command(session, odd).endswith("--from 2:left")
    assert find_section(session.timeline, "2:left") == session.timeline.sections[3]


def test_the_continue_command_names_a_default_speed_and_volume_that_differ_from_the_saved_ones():
    # Saved speed 0.8 and volume 0.5; the keys took them back to 1 and 100%. Without the flags,
    # the printed command would start again at the saved 0.8 and 50%.
    from coach.settings import Settings, save_settings

    save_settings(Settings(speed=0.8, volume=0.5, countdown=3, guidance="brief"))
    session = make_session(speed=0.8, volume=0.5, countdown=0, guidance="full")  # --countdown 0 --guidance full
    command = continue_command(session, session.timeline.sections[1], speed=1.0, volume=1.0)
    assert command.endswith('--speed 1 --countdown 0 --guidance full --volume 1 --from "Leg across:right"'), command


def _as_a_shell_reads_it(command: str) -> list[str]:
    import subprocess

    done = subprocess.run(["sh", "-c", f"set -- {command.removeprefix('coach ')}; printf '%s\\n' \"$@\""],
                          capture_output=True, text=True, check=True, env={"HOME": "/root", "leg": "EXPANDED"})
    return ["coach", *done.stdout.splitlines()]


def test_the_continue_command_reads_back_in_a_shell_as_the_words_it_means(tmp_path):
    from dataclasses import replace

    from coach.routine import load_routine

    source = tmp_path / "it's $HOME.toml"
    source.write_text(SHORT.read_text(encoding="utf-8").replace('sides = ["right", "left"]',
                                                                'sides = ["right leg", "left $leg"]'),
                      encoding="utf-8")
    routine = load_routine(str(source))
    session = make_session(source, start_side="left $leg", guidance="brief", voice="gmw/en-GB-x-rp",
                           volume=0.5)
    session = replace(session, options=replace(session.options, minutes=6.0))
    section = session.timeline.sections[1]
    command = continue_command(session, section, speed=0.8, volume=0.7)
    words = _as_a_shell_reads_it(command)
    assert words[:3] == ["coach", "start", str(source)]
    pairs = dict(zip(words[3::2], words[4::2]))
    assert pairs == {"--side": "left $leg", "--minutes": "6", "--speed": "0.8", "--guidance": "brief",
                     "--voice": "gmw/en-GB-x-rp", "--volume": "0.7",
                     "--from": f"{section.pose}:{section.side}"}, command
    assert find_section(session.timeline, pairs["--from"]) == section
    assert routine.sides == ("right leg", "left $leg")


def test_the_continue_command_names_a_pose_by_number_when_its_name_is_not_its_own(tmp_path):
    source = tmp_path / "twice.toml"
    source.write_text('title = "Twice"\n'
                      '[[poses]]\nname = "Stretch"\nhold = 10\nsetup = ["Stretch out."]\n'
                      '[[poses]]\nname = "Twist"\nhold = 10\nsetup = ["Twist."]\n'
                      '[[poses]]\nname = "stretch"\nhold = 10\nsetup = ["Stretch again."]\n'
                      '[[poses]]\nname = "12"\nhold = 10\nsetup = ["A pose called twelve."]\n', encoding="utf-8")
    session = make_session(source)
    for section in session.timeline.sections:
        value = _as_a_shell_reads_it(continue_command(session, section))[-1]
        assert find_section(session.timeline, value) == section, value
    values = {_as_a_shell_reads_it(continue_command(session, section))[-1].partition(":")[0]
              for section in session.timeline.sections}
    assert values == {"1", "Twist", "3", "4"}  # the name where it is the pose's own


class _OrderSink(MemorySink):
    """A MemorySink that notes each play() in a shared log."""

    def __init__(self, sim, log):
        super().__init__(sim.clock, sim.sleep)
        self.log = log

    def play(self, samples, at=None):
        self.log.append("play")
        return super().play(samples, at)


class _OrderDisplay(Listener):
    """A display that notes when it is drawn the first time and what it is told."""

    refresh = None
    captions = False

    def __init__(self, log):
        self.log = log

    def __enter__(self):
        self.log.append("drawn")
        return self

    def __exit__(self, *exc):
        self.log.append("closed")

    def event(self, event, status):
        self.log.append(event.kind)

    def __getattr__(self, name):  # every other Listener call: nothing to note
        return lambda *args: None


def test_the_display_is_first_drawn_once_the_first_sound_is_playing(monkeypatch):
    # Drawing the live panel imports rich (tens of ms): the first word does not wait for it.
    log: list[str] = []
    sim = SimTime()
    monkeypatch.setattr(live, "_display", lambda *args: _OrderDisplay(log))
    _live(make_session(), sim, monkeypatch, _OrderSink(sim, log))
    assert log[:2] == ["play", "drawn"]
    assert log[-1] == "closed" and log.count("drawn") == 1
    # What it was told before it was drawn (the first event) comes after, in order.
    assert log.index("speech") > log.index("drawn")


def test_the_quiet_log_prints_its_title_first_and_after_the_first_sound(monkeypatch):
    log: list[str] = []
    sim = SimTime()

    class Logged(TimedStream):
        def write(self, text):
            if text.strip():
                log.append("line")
            return super().write(text)

    monkeypatch.setattr(live, "open_sink", lambda backend=None, volume=1.0: _OrderSink(sim, log))
    out = Logged(sim)
    session = make_session()
    run_live(session, quiet=True, stdin=io.StringIO(), stdout=out, clock=sim.clock, sleep=sim.sleep)
    assert log[:2] == ["play", "line"]
    assert out.lines[0][1].startswith(session.routine.title)


def test_a_display_left_waiting_for_speech_is_drawn_after_a_while_and_not_before():
    from coach.live import GuardedListener

    log: list[str] = []
    sim = SimTime()
    display = _OrderDisplay(log)
    guarded = GuardedListener(display, live.threading.Lock(), sim.clock)
    status = Status(0.0, False, None, preparing=True)
    with guarded:
        guarded.preparing(status)
        sim.sleep(GuardedListener.OPEN_WHILE_PREPARING * 0.6)
        guarded.tick(status)
        assert log == []  # a first clip that comes quickly is not kept waiting by a first drawing
        sim.sleep(GuardedListener.OPEN_WHILE_PREPARING * 0.6)
        guarded.tick(status)
        assert log == ["drawn"]  # 'Preparing speech' is on the screen while a slow voice loads
    assert log == ["drawn", "closed"]


def test_a_session_stopped_before_its_first_sound_draws_a_display_only_for_something_to_show():
    from coach.live import GuardedListener

    sim = SimTime()
    status = Status(0.0, False, None)
    for calls, drawn in (((), False), (("tick",), False), (("tick", "note"), True)):
        log: list[str] = []
        display = _OrderDisplay(log)
        display.note = lambda text: log.append("note")
        with GuardedListener(display, live.threading.Lock(), sim.clock) as guarded:
            for call in calls:
                guarded.note("a cue left out") if call == "note" else guarded.tick(status)
        assert ("drawn" in log) == drawn and ("note" in log) == drawn, calls


def test_ctrl_z_mid_sentence_plays_the_rest_of_it_after_fg_then_all_later_sounds_shifted():
    from coach.keys import Resumed

    session = make_session(hold=8)
    segs = segments(session.timeline)
    first = segs[0]
    stopped_at = (first.start + first.length // 2) / SAMPLE_RATE  # halfway through the first line
    stopped_for = 3.0

    class StopAndGo(SimTime):
        told = False

        def sleep(self, seconds):
            # fg wakes the sleeper at once (coach.keys writes to its wake-up pipe).
            if not self.told and self.now < T0 + stopped_at <= self.now + seconds:
                self.sleeps.append(seconds)
                self.now = T0 + stopped_at + stopped_for
                return
            super().sleep(seconds)

        def key(self):
            if not self.told and self.now >= T0 + stopped_at + stopped_for:
                self.told = True
                return Resumed(T0 + stopped_at, T0 + stopped_at + stopped_for)
            return super().key()

    sim = StopAndGo()
    _, sink, segs, buffers = play(session, sim)
    (t0, whole), (t1, rest), *later = sink.plays
    assert t0 == pytest.approx(T0) and len(whole) == first.length
    assert t1 == pytest.approx(T0 + stopped_at + stopped_for, abs=0.01)
    assert len(rest) == pytest.approx(first.length - round(stopped_at * SAMPLE_RATE), abs=2)
    assert [t for t, _ in later] == pytest.approx(planned(segs, shift=stopped_for)[1:], abs=1e-6)


class _LateStartSink(MemorySink):
    """A device that starts a sound played at once `late` seconds after it is asked to (a
    restart of its stream), and says so; sounds handed over ahead it places on time."""

    def __init__(self, sim, late: float) -> None:
        super().__init__(sim.clock, lead=0.8)
        self.late = late

    def play(self, samples, at=None):
        if at is None:
            return super().play(samples, self.clock() + self.late)  # queued behind its buffer
        return super().play(samples, at)


def _player(session, sim, sink, **kwargs):
    segs = segments(session.timeline)
    buffers = [mix_segment(s, session.speech, session.chimes) for s in segs]
    return Player(session.timeline, segs, buffers, sink, clock=sim.clock, sleep=sim.sleep, keys=sim.key,
                  **kwargs), segs


def test_after_n_the_new_pose_keeps_its_settle_however_late_the_device_starts_its_first_line():
    session = make_session(hold=8)
    first, second = session.timeline.sections[:2]
    pressed = first.hold_start / SAMPLE_RATE + 1.0
    sim = SimTime(keys=[(pressed, "n")])
    sink = _LateStartSink(sim, late=0.4)
    player, segs = _player(session, sim, sink)
    player.run()
    line = next(t for t, _ in sink.plays if t > T0 + pressed)
    chime_at = next(e for e in session.timeline.events if e.part == "hold_start" and e.section == second.index)
    first_line = next(e for e in session.timeline.events if e.kind == "speech" and e.section == second.index)
    chime = next(t for t, s in sink.plays if t > line + 0.01 and len(s) == len(session.chimes["hold_start"]))
    assert line == pytest.approx(T0 + pressed + 0.4, abs=1e-6)  # the device's own delay
    assert chime - line == pytest.approx((chime_at.start - first_line.start) / SAMPLE_RATE, abs=1e-6)


def test_n_while_the_key_list_is_spoken_goes_on_at_once_from_the_next_pose():
    session = make_session(hold=8)
    first, second = session.timeline.sections[:2]
    asked = first.hold_start / SAMPLE_RATE + 1.0
    help_sound = np.full(10 * SAMPLE_RATE, 0.1, dtype=np.float32)  # ten seconds of key list
    sim = SimTime(keys=[(asked, "h"), (asked + 2.0, "n")])
    sink = MemorySink(sim.clock)
    player, segs = _player(session, sim, sink, help_sound=lambda: help_sound)
    player.run()
    after = [t for t, s in sink.plays if t > T0 + asked + 2.0 - 1e-9]
    assert after and after[0] == pytest.approx(T0 + asked + 2.0, abs=1e-6)  # not 8 s later
    assert not player.paused


def test_n_in_the_closing_words_changes_nothing():
    session = make_session(hold=8)
    last = session.timeline.sections[-1]
    pressed = last.end / SAMPLE_RATE + 0.3
    sim = SimTime(keys=[(pressed, "n")])
    recorder = Recorder()
    _, sink, segs, _ = play(session, sim, listener=recorder)
    assert not [c for c in recorder.calls if c[0] == "moved"]
    assert times(sink) == pytest.approx(planned(segs), abs=1e-9) and not sink.stops


def test_from_takes_a_side_spelled_as_the_routine_spells_it(tmp_path):
    # Sides are the routine's own names: "Left" and "Right", or one with a colon in it; the
    # command printed on a stop names them so, and must start there again.
    source = tmp_path / "caps.toml"
    source.write_text('title = "Caps"\n[defaults]\nsides = ["Left", "Right", "back:up"]\n'
                      '[[poses]]\nname = "Stretch"\nhold = 10\nsetup = ["Stretch your {side}."]\n',
                      encoding="utf-8")
    session = make_session(source)
    for section in session.timeline.sections:
        value = _as_a_shell_reads_it(continue_command(session, section))[-1]
        assert find_section(session.timeline, value) == section, value
    assert find_section(session.timeline, "stretch:right").side == "Right"
    with pytest.raises(UsageError, match="unknown side 'middle'"):
        find_section(session.timeline, "stretch:middle")


def test_the_continue_command_from_a_later_pose_of_a_shared_name_names_it_by_number(tmp_path):
    # Started with --from 2: the session's timeline begins at pose 2, but pose 1 has the
    # same name, so the name would start at pose 1 again.
    from dataclasses import replace

    source = tmp_path / "twice.toml"
    source.write_text('title = "Twice"\n[defaults]\nsides = []\n'
                      '[[poses]]\nname = "Stretch"\nhold = 10\nsetup = ["Stretch out."]\n'
                      '[[poses]]\nname = "Stretch"\nhold = 10\nsetup = ["Stretch again."]\n', encoding="utf-8")
    whole = make_session(source)
    later = make_session(source)
    later = replace(later, timeline=replace(later.timeline, sections=later.timeline.sections[1:]))
    assert continue_command(later, later.timeline.sections[0]).endswith("--from 2")
    assert find_section(whole.timeline, "2") == whole.timeline.sections[1]


def test_the_key_list_spoken_is_shown_while_it_is_said():
    """h: the listener is told the keys are being said (paused, keys_aloud), and the panel
    and the log show the key list meanwhile; afterwards the panel is as before."""
    from coach.display import KEY_HELP, LogDisplay

    session = make_session(hold=8)
    first = session.timeline.sections[0]
    asked = first.hold_start / SAMPLE_RATE + 1.0
    help_sound = np.full(3 * SAMPLE_RATE, 0.1, dtype=np.float32)
    sim = SimTime(keys=[(asked, "h")])
    recorder = Recorder()
    player, _ = _player(session, sim, MemorySink(sim.clock), help_sound=lambda: help_sound, listener=recorder)
    player.run()
    pauses = [s for name, s in recorder.calls if name == "paused"]
    assert len(pauses) == 1 and pauses[0].keys_aloud and pauses[0].paused
    resumed = [s for name, s in recorder.calls if name == "resumed"]
    assert len(resumed) == 1 and not resumed[0].keys_aloud

    console = Console(width=100, height=40, file=io.StringIO(), force_terminal=False, color_system=None)
    display = LiveDisplay(session.timeline, session.routine.title, console)
    console.print(display.render(pauses[0]))
    shown = console.file.getvalue()
    assert "Keys" in shown and "n next pose" in shown and shown.count("q quit") == 1
    console.file = io.StringIO()
    console.print(display.render(resumed[0]))
    assert "Keys " not in console.file.getvalue() and "q quit" in console.file.getvalue()

    log = io.StringIO()
    LogDisplay(session.timeline, "t", log).paused(pauses[0])
    assert log.getvalue().strip().endswith(f"paused: the keys, aloud ({KEY_HELP})")


def test_the_log_says_when_a_wait_for_speech_begins_and_how_long_it_was():
    """--quiet: someone listening to a log (a screen reader) hears of the wait as it starts."""
    session = make_session()
    log = io.StringIO()
    display = LogDisplay(session.timeline, "t", log)
    display.preparing(Status(0.0, False, None, preparing=True))  # the first line being made: no news
    assert log.getvalue() == ""
    display.event(session.timeline.events[0], Status(0.0, False, None))
    log.truncate(0), log.seek(0)
    status = Status(12.0, False, session.timeline.sections[0], preparing=True)
    display.preparing(status)
    display.ready(replace(status, preparing=False), 1.634)
    assert log.getvalue().splitlines() == ["[00:12] preparing speech...", "[00:12] waited 1.63 s for speech to be ready"]
