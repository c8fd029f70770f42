"""Live sessions whose speech is synthesized while they play, in simulated time.

A fake engine, slower than real time, makes clips one after the other in the order the
plan asks for them; the player runs on the simulated clock against a MemorySink.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from coach.audio import SAMPLE_RATE
from coach.errors import UsageError
from coach.live_plan import GrowingPlan
from coach.player import Listener, Player
from coach.routine import load_routine
from coach.sinks import MemorySink
from coach.speech.clip import Clip
from coach.timeline import TimelineOptions
from tests.test_player import CHIME_SECONDS, T0, SimTime, _clip

SHORT = Path(__file__).parent / "data" / "short.toml"


def clip_seconds(text: str, speed: float) -> float:
    return (0.4 + 0.05 * len(text)) / speed


class SlowEngine:
    """A ClipSource on the simulated clock: each clip takes `slowness` times its own length
    to make, one at a time, in the order last asked for (a new order starts from now)."""

    def __init__(self, sim: SimTime, slowness: float = 1.5) -> None:
        self.sim = sim
        self.slowness = slowness
        self.made: dict[tuple[str, float], tuple[float, Clip]] = {}  # -> (ready at, clip)
        self.asked: list[list[tuple[str, float]]] = []
        self._queue: list[tuple[float, tuple[str, float]]] = []

    def want(self, order) -> None:
        self.asked.append(list(order))
        self._catch_up()
        t = self.sim.now
        self._queue = []
        for item in order:
            if item in self.made:
                continue
            t += self.slowness * clip_seconds(*item)
            self._queue.append((t, item))

    def _catch_up(self) -> None:
        while self._queue and self._queue[0][0] <= self.sim.now:
            at, (text, speed) = self._queue.pop(0)
            samples = _clip(clip_seconds(text, speed), 0.1 + speed / 10)
            self.made[(text, speed)] = (at, Clip(samples))

    @property
    def version(self) -> int:
        self._catch_up()
        return len(self.made)

    def get(self, text: str, speed: float) -> Clip | None:
        self._catch_up()
        made = self.made.get((text, speed))
        return made[1] if made else None

    def pending(self) -> int:
        self._catch_up()
        return len(self._queue)


class Spy(Listener):
    def __init__(self, sim: SimTime) -> None:
        self.sim = sim
        self.events: list[tuple[float, object]] = []
        self.waits: list[float] = []  # positions where playback waited for speech

    def event(self, event, status):
        self.events.append((self.sim.now, event))

    def preparing(self, status):
        self.waits.append(status.position)


CHIMES = {k: _clip(s, 0.5) for k, s in CHIME_SECONDS.items()}


def run(sim: SimTime, engine: SlowEngine, options=TimelineOptions(hold=6), routine=SHORT):
    plan = GrowingPlan(load_routine(routine), options, CHIMES, engine, clock=sim.clock)
    spy = Spy(sim)
    sink = MemorySink(sim.clock)
    player = Player.of(plan, sink, clock=sim.clock, sleep=sim.sleep, keys=sim.key, listener=spy)
    stop = player.run()
    return stop, player, plan, spy, sink


def holds_of(spy: Spy):
    """(hold event, its start chime's time, its midpoint chime's time, time of the next sound after it)."""
    fired = spy.events
    out = []
    for i, (t, e) in enumerate(fired):
        if e.kind == "hold":
            start = next(tt for tt, ee in fired if ee.part == "hold_start" and ee.section == e.section)
            mid = next(tt for tt, ee in fired if ee.part == "midpoint" and ee.section == e.section)
            after = next((tt for tt, ee in fired[i:] if ee.kind == "speech" and ee.part == "release"
                          and ee.section == e.section), None)
            out.append((e, start, mid, after))
    return out


def test_playback_starts_before_synthesis_is_complete():
    sim = SimTime()
    engine = SlowEngine(sim)
    stop, player, plan, spy, sink = run(sim, engine)
    assert stop.reason == "end"
    first_sound = sink.plays[0][0]
    first_text = spy.events[0][1].text
    # The first sound comes as soon as the first clip is made, long before the last one.
    assert first_sound == pytest.approx(T0 + engine.slowness * clip_seconds(first_text, 1.0), abs=0.05)
    assert max(at for at, _ in engine.made.values()) > first_sound + 10
    assert plan.timeline.complete
    spoken = [e.text for _, e in spy.events if e.kind == "speech"]
    assert len(spoken) == len([e for e in plan.timeline.events if e.kind == "speech"])


def test_waits_happen_only_in_untimed_gaps_and_never_shorten_a_hold():
    sim = SimTime()
    engine = SlowEngine(sim, slowness=6.0)  # far slower than real time: it must wait often
    stop, player, plan, spy, sink = run(sim, engine)
    assert player.waits >= 3 and player.waited > 1.0
    for position in spy.waits:
        at = round(position * SAMPLE_RATE)
        for section in plan.timeline.sections:
            assert not section.hold_start <= at < section.hold_start + section.hold_length, \
                f"waited inside the hold of {section.label}"
    for hold, start, mid, after in holds_of(spy):
        assert mid - start == pytest.approx(hold.duration_s / 2, abs=1e-9)
        assert after - start >= hold.duration_s - 1e-9  # the release never cuts a hold short
    # Once waiting ends, the sounds keep their planned spacing again: no drift.
    first_sound = sink.plays[0][0]
    assert sim.now == pytest.approx(first_sound + plan.timeline.length_s + player.waited, abs=1e-6)


def test_a_speed_change_during_a_hold_keeps_it_exact_and_later_speech_uses_the_new_clips():
    # Where the second hold is at speed 1 (a fast engine: no waits), then "-" twice 1 s into it.
    before = SimTime()
    _, _, plain, spy, _ = run(before, SlowEngine(before, slowness=0.2))
    section = plain.timeline.sections[1]
    first_sound = 0.2 * clip_seconds(spy.events[0][1].text, 1.0)
    key_at = first_sound + section.hold_start / SAMPLE_RATE + 1.0
    sim = SimTime(keys=[(key_at, "-"), (key_at + 0.01, "-")])
    engine = SlowEngine(sim, slowness=0.2)
    stop, player, plan, spy, sink = run(sim, engine)
    assert stop.reason == "end" and player.waits == 0
    assert plan.speed == pytest.approx(0.8)
    for hold, start, mid, after in holds_of(spy):
        assert mid - start == pytest.approx(hold.duration_s / 2, abs=1e-9)
        assert after - start >= hold.duration_s - 1e-9
    assert plan.timeline.sections[1].hold_length == section.hold_length
    key_time = T0 + key_at
    earlier = [e for t, e in spy.events if e.kind == "speech" and t < key_time]
    later = [e for t, e in spy.events if e.kind == "speech" and t > key_time]
    assert earlier and later
    for e in earlier:
        assert e.length == round(clip_seconds(e.text, 1.0) * SAMPLE_RATE)
    for e in later:  # the release of this very hold already, and everything after it
        assert e.length == round(clip_seconds(e.text, 0.8) * SAMPLE_RATE), e.text
    assert later[0].part == "release" and later[0].section == 1
    # The rest was asked for at the new speed; the clips at speed 1 are all kept.
    assert {speed for _, speed in engine.asked[-1]} == {0.8}
    assert all((e.text, 1.0) in engine.made for e in earlier)
    # Untimed gaps follow the new speed: a slower voice makes the rest of the session longer.
    assert plan.timeline.length > plain.timeline.length


def test_the_live_display_marks_the_word_being_said():
    import io

    from rich.console import Console

    from coach.display import LiveDisplay, current_word
    from coach.player import Status
    from coach.speech.clip import Word
    from coach.timeline import Event, Timeline

    words = (Word("Reach", 1000, 5000), Word("up", 6000, 8000), Word("slowly.", 9000, 15000))
    event = Event(1000, 14000, "speech", "cue", "Reach up slowly.", words=words)
    assert [current_word(event, at) for at in (999, 1000, 5500, 6000, 14999)] == [None, 0, 0, 1, 2]
    console = Console(width=100, file=io.StringIO(), force_terminal=True, color_system="standard")
    display = LiveDisplay(Timeline((event,), (), 16000), "Test", console)
    display.speaking, display.now = event, event.text
    display._last = Status(6500 / SAMPLE_RATE, False, None)
    assert display.refresh == display.WORDS_REFRESH  # redrawn often while words go by
    console.print(display.render(Status(6500 / SAMPLE_RATE, False, None)))
    out = console.file.getvalue()
    assert "Reach" in out and "slowly." in out
    assert "\x1b[1;7mup" in out or "\x1b[7;1mup" in out  # "up" is marked (bold, reverse)
    display._last = Status(16000 / SAMPLE_RATE, False, None)
    assert display.refresh == display.IDLE_REFRESH


# --- --from: the session begins at a pose, whose speech is made first ---------------------------

def test_a_session_from_a_pose_asks_for_that_pose_first_and_times_it_as_the_whole_session_does():
    routine = load_routine(SHORT)
    sim = SimTime()
    engine = SlowEngine(sim, slowness=0.0)  # every clip at once: the whole session is known
    whole = GrowingPlan(routine, TimelineOptions(hold=6), CHIMES, engine, clock=sim.clock)
    target = whole.timeline.sections[2]  # Leg up (left), where the side switches
    assert whole.timeline.complete and target.label == "Leg up (left)"

    engine = SlowEngine(sim, slowness=1.5)
    plan = GrowingPlan(routine, TimelineOptions(hold=6), CHIMES, engine, clock=sim.clock,
                       from_pose="leg up:left")
    asked = [text for text, _ in engine.asked[-1]]
    assert asked[:3] == ["Now the left side.", "Lift your left leg.", "Lower it."]  # no intro first
    assert "Lie on your back." not in asked and "Lift your right leg." not in asked
    assert plan.labels == ["Leg up (left)", "Leg across (left)"]
    assert plan.first_turn == 2

    sim.sleep(60)  # every clip of the shorter session made
    plan.refresh(urgent=True)
    assert plan.timeline.complete
    assert [s.label for s in plan.timeline.sections] == ["Leg up (left)", "Leg across (left)"]
    section = plan.timeline.sections[0]
    assert section.start == 0 and section.hold_length == target.hold_length
    # From there on, the same events at the same distances as in the whole session.
    shift = target.start
    expected = [(e.start - shift, e.kind, e.text) for e in whole.timeline.events if e.start >= shift]
    assert [(e.start, e.kind, e.text) for e in plan.timeline.events] == expected
    assert plan.timeline.length == whole.timeline.length - shift


def test_a_live_session_from_a_pose_starts_once_its_own_speech_is_made():
    sim = SimTime()
    engine = SlowEngine(sim, slowness=1.5)
    plan = GrowingPlan(load_routine(SHORT), TimelineOptions(hold=6), CHIMES, engine, clock=sim.clock,
                       from_pose="1:left")
    spy = Spy(sim)
    sink = MemorySink(sim.clock)
    stop = Player.of(plan, sink, clock=sim.clock, sleep=sim.sleep, keys=sim.key, listener=spy).run()
    assert stop.reason == "end"
    # A pose begins once all its lines are made: the first sound waits for those three,
    # not for the intro and the two poses before it (seven lines more).
    own = ["Now the left side.", "Lift your left leg.", "Lower it."]
    assert sink.plays[0][0] == pytest.approx(T0 + sum(1.5 * clip_seconds(t, 1.0) for t in own), abs=0.05)
    spoken = [e.text for _, e in spy.events if e.kind == "speech"]
    assert spoken[0] == own[0] and "Lie on your back." not in spoken and "Lift your right leg." not in spoken
    assert spoken[-1] == "That is all."


def test_a_session_from_the_first_pose_leaves_the_intro_out():
    sim = SimTime()
    engine = SlowEngine(sim, slowness=0.0)
    plan = GrowingPlan(load_routine(SHORT), TimelineOptions(hold=6), CHIMES, engine, clock=sim.clock,
                       from_pose="1")
    assert plan.first_turn == 0 and not plan.has_intro
    assert "Lie on your back." not in [text for text, _ in engine.asked[-1]]
    sim.sleep(1)
    plan.refresh(urgent=True)
    assert plan.timeline.events[0].text == "Lift your right leg." and plan.timeline.events[0].start == 0
    assert len(plan.timeline.sections) == 4


def test_from_an_unknown_pose_in_a_live_session_lists_the_poses_before_any_synthesis():
    sim = SimTime()
    engine = SlowEngine(sim)
    with pytest.raises(UsageError) as err:
        GrowingPlan(load_routine(SHORT), TimelineOptions(hold=6), CHIMES, engine, clock=sim.clock,
                    from_pose="twist")
    assert '1 "Leg up"' in str(err.value) and engine.asked == []


@pytest.mark.parametrize("from_pose, heading, following", [(None, "Introduction", "Leg up (right)"),
                                                           ("1:left", "Leg up (left)", "Leg across (left)")])
def test_the_display_before_the_first_clip_names_where_the_session_begins(from_pose, heading, following):
    import io

    from coach import live
    from coach.session import SessionOptions

    sim = SimTime()
    plan = GrowingPlan(load_routine(SHORT), TimelineOptions(hold=6, speed=0.8), CHIMES, SlowEngine(sim),
                       clock=sim.clock, from_pose=from_pose)
    assert not plan.timeline.sections  # nothing synthesized yet

    class Started:  # what _display reads of a session
        routine = plan.routine
        options = SessionOptions(speed=0.8, volume=0.5)

    stdout = io.StringIO()
    stdout.isatty = lambda: True
    display = live._display(Started(), plan, stdout, quiet=False, keys=True)
    with display:  # its first drawing
        pass
    out = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", stdout.getvalue())
    assert f"Pose {heading}" in out and f"Next {following}" in out
    assert "/ ~0" in out  # the estimated total, not 00:00
    assert "speed 0.8" in out and "volume 50%" in out


def test_live_and_exported_sessions_have_the_same_gain():
    # One loudness: the live gain is fixed before any speech, and an export uses the same.
    from coach.mixer import fixed_gain, segments, session_gain
    from coach.routine import load_routine
    from coach.session import build_session, start_live_session

    routine = load_routine("leg-stretches")
    built = build_session(routine)
    live = start_live_session(routine)
    try:
        exported = session_gain(segments(built.timeline), built.speech, built.chimes, built.options.volume)
        assert live.plan.gain == fixed_gain(built.chimes) == exported == 1.0
    finally:
        live.speech.close()


def test_the_first_estimated_total_is_the_one_coach_list_shows():
    # Before any clip exists, the display's total (~MM:SS) and `coach list`'s come from the
    # same guess of each line's length (coach.length), so the two never disagree.
    from coach.length import ESTIMATED_CHIME_SECONDS, estimate_seconds

    sim = SimTime()
    routine = load_routine("leg-stretches")
    two_seconds = {k: _clip(ESTIMATED_CHIME_SECONDS, 0.5) for k in CHIME_SECONDS}
    plan = GrowingPlan(routine, TimelineOptions(), two_seconds, SlowEngine(sim), clock=sim.clock)
    total, estimated = plan.total()
    assert estimated
    assert total == pytest.approx(estimate_seconds(routine, TimelineOptions()), abs=0.01)


def test_the_estimated_total_follows_a_speed_key_at_once():
    # The estimate was kept for ESTIMATE_EVERY seconds: after - from 1 to 0.5 the display
    # went on showing the total at speed 1 (~01:06 for a session that took 01:24).
    sim = SimTime()
    plan = GrowingPlan(load_routine("leg-stretches"), TimelineOptions(), CHIMES, SlowEngine(sim), clock=sim.clock)
    before, estimated = plan.total()
    assert estimated
    plan.set_speed(0.5, 0)
    after, estimated = plan.total()
    assert estimated and after == pytest.approx(plan.estimated_timeline().length_s) and after > before + 60


def test_a_sound_beyond_what_was_known_is_still_handed_over_its_lead_ahead():
    # The clips after the first came while the first line played; the player had slept until
    # the end of what it knew, and handed the next line over when it was due: the device then
    # started it a buffer's length late (350 ms, heard as a shorter settle before the hold).
    from coach.player import GROW_POLL

    sim = SimTime()
    engine = SlowEngine(sim, slowness=0.05)  # every clip made long before it is needed
    plan = GrowingPlan(load_routine(SHORT), TimelineOptions(hold=6), CHIMES, engine, clock=sim.clock)
    sink = MemorySink(sim.clock, lead=0.8)
    player = Player.of(plan, sink, clock=sim.clock, sleep=sim.sleep, keys=sim.key, listener=Spy(sim))
    assert player.run().reason == "end"
    assert len(sink.handed) == len(sink.plays) > 3
    for (due, _), handed in list(zip(sink.plays, sink.handed))[1:]:
        assert due - handed >= 0.8 - GROW_POLL - 1e-9, (due - T0, handed - T0)
    # ...and played where the plan says.
    began = sink.plays[0][0]  # once the first clip was made
    starts = [began + seg.start / SAMPLE_RATE for seg in plan.segments()]
    assert [due for due, _ in sink.plays] == pytest.approx(starts, abs=1e-6)


def test_n_before_the_next_pose_is_known_goes_there_once_it_is():
    routine = load_routine(SHORT)
    intro = routine.intro[0]
    slowness = 0.5  # the first pose is made while the intro plays, but after the key
    first_sound = slowness * clip_seconds(intro, 1.0)
    pressed = first_sound + 0.2
    sim = SimTime(keys=[(pressed, "n")])
    engine = SlowEngine(sim, slowness=slowness)
    plan = GrowingPlan(routine, TimelineOptions(hold=6), CHIMES, engine, clock=sim.clock)
    spy = Spy(sim)
    moved = []
    spy.moved = lambda status: moved.append((sim.now, status.section))
    sink = MemorySink(sim.clock)
    player = Player.of(plan, sink, clock=sim.clock, sleep=sim.sleep, keys=sim.key, listener=spy)
    assert player.run().reason == "end"
    (when, section), = moved
    assert section is not None and section.index == 0 and when > T0 + pressed
    # It went as soon as the pose was known: the intro line was stopped then, before its end.
    assert sink.stops and sink.stops[0] == pytest.approx(when)
    assert when < T0 + first_sound + clip_seconds(intro, 1.0)


def test_each_n_pressed_before_the_next_poses_are_known_goes_one_pose_further_once_they_are():
    # Three n's while only the intro is made (a cold cache): on to the first pose, then past it
    # and the next, as with every clip made already; not one pose for all three.
    routine = load_routine(SHORT)
    intro = routine.intro[0]
    slowness = 0.5
    first_sound = slowness * clip_seconds(intro, 1.0)
    pressed = first_sound + 0.01
    sim = SimTime(keys=[(pressed, "n"), (pressed, "n"), (pressed, "n")])
    engine = SlowEngine(sim, slowness=slowness)
    plan = GrowingPlan(routine, TimelineOptions(hold=6), CHIMES, engine, clock=sim.clock)
    spy = Spy(sim)
    moved = []
    spy.moved = lambda status: moved.append(status.position)
    player = Player.of(plan, MemorySink(sim.clock), clock=sim.clock, sleep=sim.sleep, keys=sim.key, listener=spy)
    assert player.run().reason == "end"
    sections = player.timeline.sections
    # Each to a pose's own start, once it is known: not to where the pose before it ends (the
    # pause between poses before it, labelled as that pose), which cost the next n a pose.
    assert moved == pytest.approx([s.start / SAMPLE_RATE for s in sections[:3]])
