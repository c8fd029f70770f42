"""The timeline is a pure function: exact holds, chimes in place, cues that never collide."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coach.audio import SAMPLE_RATE
from coach.routine import Cue, Pose, Routine, load_routine
from coach.timeline import (
    QUIET_BEFORE_HOLD_END,
    TimelineOptions,
    build_timeline,
    samples,
    spoken_texts,
)

CHIMES = {"hold_start": samples(1.6), "midpoint": samples(1.1), "side_switch": samples(1.8)}


def lengths_by_words(texts, speed=1.0):
    """A stand-in for synthesis: 0.35 s a word at speed 1, so texts differ in length."""
    return {t: samples(0.35 * len(t.split()) / speed + 0.2) for t in texts}


def timeline_for(routine, options=TimelineOptions(), chimes=CHIMES):
    texts = spoken_texts(routine, options)
    return build_timeline(routine, lengths_by_words(texts, options.speed), chimes, options)


def overlaps(a, b) -> bool:
    return a.start < b.end and b.start < a.end


@pytest.fixture(scope="module")
def builtin():
    return load_routine()


def test_builtin_routine_has_every_pose_on_both_sides_with_chimes(builtin):
    tl = timeline_for(builtin)
    holds = [e for e in tl.events if e.kind == "hold"]
    assert [(h.pose, h.side) for h in holds] == [
        (p.name, side) for side in ("right", "left") for p in builtin.poses
    ]
    for hold in holds:
        chimes = {e.part: e for e in tl.events if e.kind == "chime" and e.section == hold.section}
        assert chimes["hold_start"].start == hold.start
        assert chimes["midpoint"].start == hold.start + samples(45 / 2)
    switches = [e for e in tl.events if e.part == "side_switch"]
    assert len(switches) == 1 and switches[0].side == "left"
    # the switch is announced in words right after its chime
    spoken_after = [e for e in tl.events if e.kind == "speech" and e.start > switches[0].start][:2]
    assert [e.part for e in spoken_after] == ["switch", "setup"]
    assert "right foot" in spoken_after[0].text and spoken_after[1].text == "Leg up, left leg."


def test_hold_is_exact_whatever_the_speed(builtin):
    for speed in (0.5, 0.75, 1.0, 1.5, 2.0):
        tl = timeline_for(builtin, TimelineOptions(speed=speed))
        for hold in (e for e in tl.events if e.kind == "hold"):
            assert hold.length == 45 * SAMPLE_RATE
            release = next(e for e in tl.events if e.part == "release" and e.section == hold.section)
            assert release.start == hold.end


def test_slower_voice_makes_a_longer_session_but_same_holds(builtin):
    slow = timeline_for(builtin, TimelineOptions(speed=0.75))
    fast = timeline_for(builtin, TimelineOptions(speed=1.5))
    assert slow.length > fast.length
    slow_holds = [e.length for e in slow.events if e.kind == "hold"]
    fast_holds = [e.length for e in fast.events if e.kind == "hold"]
    assert slow_holds == fast_holds


def test_start_side_reorders_the_sides(builtin):
    tl = timeline_for(builtin, TimelineOptions(start_side="left"))
    assert [s.side for s in tl.sections] == ["left"] * 3 + ["right"] * 3
    first_setup = next(e for e in tl.events if e.part == "setup")
    assert "left" in first_setup.text


def test_hold_override_and_dropped_cues_are_warned(builtin):
    tl = timeline_for(builtin, TimelineOptions(hold=4))
    assert all(e.length == 4 * SAMPLE_RATE for e in tl.events if e.kind == "hold")
    assert not [e for e in tl.events if e.part == "cue"]
    assert len(tl.warnings) == 3 * 3 * 2  # every cue of every pose on both sides
    assert "left out" in tl.warnings[0] and "Leg up" in tl.warnings[0]
    # Both things that decide it, so either can be changed: the hold's length and the speed.
    assert tl.warnings[0].endswith("left out: the 4-second hold has no room left for it at speed 1")
    slow = timeline_for(builtin, TimelineOptions(hold=4, speed=0.8))
    assert slow.warnings[0].endswith("the 4-second hold has no room left for it at speed 0.8")


def test_cues_at_explicit_seconds_are_placed_exactly():
    pose = Pose("Bridge", hold=30, cues=(Cue("Lift your hips.", at=5), Cue("Breathe out slowly.", at=20)))
    routine = Routine(title="t", poses=(pose,), sides=())
    tl = timeline_for(routine)
    hold = next(e for e in tl.events if e.kind == "hold")
    cues = [e for e in tl.events if e.part == "cue"]
    assert [c.start - hold.start for c in cues] == [samples(5), samples(20)]


def test_cue_at_a_chime_is_dropped_not_overlapped():
    pose = Pose("Bridge", hold=30, cues=(Cue("Lift your hips now please.", at=14.5),))
    tl = timeline_for(Routine(title="t", poses=(pose,), sides=()))
    assert not [e for e in tl.events if e.part == "cue"]
    assert "at 14.5 s it would overlap the midpoint chime; it fits at = " in tl.warnings[0]


@pytest.mark.parametrize("at, countdown, in_the_way", [
    (1, 0, "the hold-start chime"),
    (14.5, 0, "the midpoint chime"),
    (5.5, 0, "the cue at 5 s"),
    (28.5, 0, "the end of the hold"),
    (24, 5, "the countdown"),
])
def test_a_cue_left_out_names_what_is_in_its_way_and_where_it_fits(at, countdown, in_the_way):
    """The suggested `at` is a whole second, and the cue really plays there."""
    text = "Lift your hips now please."
    cue_at_5 = Cue("Breathe out.", at=5)
    pose = Pose("Bridge", hold=30, cues=(cue_at_5, Cue(text, at=at)))
    options = TimelineOptions(countdown=countdown)
    tl = timeline_for(Routine(title="t", poses=(pose,), sides=()), options)
    [warning] = tl.warnings
    assert f"at {at:g} s it would overlap {in_the_way}; it fits at = " in warning
    fits = float(warning.rsplit("it fits at = ", 1)[1])
    assert fits == int(fits) and fits != at
    moved = Pose("Bridge", hold=30, cues=(cue_at_5, Cue(text, at=fits)))
    tl = timeline_for(Routine(title="t", poses=(moved,), sides=()), options)
    assert not tl.warnings
    hold = next(e for e in tl.events if e.kind == "hold")
    assert [e.start - hold.start for e in tl.events if e.text == text] == [samples(fits)]


def test_countdown_speaks_last_seconds(builtin):
    tl = timeline_for(builtin, TimelineOptions(countdown=3))
    hold = next(e for e in tl.events if e.kind == "hold")
    counts = [e for e in tl.events if e.part == "countdown" and e.section == hold.section]
    assert [c.text for c in counts] == ["3", "2", "1"]
    assert [hold.end - c.start for c in counts] == [samples(3), samples(2), samples(1)]


def test_deterministic(builtin):
    assert timeline_for(builtin) == timeline_for(builtin)


# -- properties over generated routines ---------------------------------------

words = st.lists(st.sampled_from(["reach", "breathe", "soften", "your", "leg", "{side}", "slowly"]),
                 min_size=1, max_size=12).map(" ".join)
cues = st.lists(st.builds(Cue, words, st.one_of(st.none(), st.floats(0, 60))), max_size=5)
poses = st.builds(Pose, name=st.sampled_from(["A", "B", "C"]), setup=st.lists(words, max_size=3).map(tuple),
                  hold=st.floats(1, 90), cues=cues.map(tuple), release=st.lists(words, max_size=2).map(tuple))
routines = st.builds(Routine, title=st.just("generated"), poses=st.lists(poses, min_size=1, max_size=4).map(tuple),
                     sides=st.sampled_from([("right", "left"), ("left", "right")]),
                     intro=st.lists(words, max_size=2).map(tuple), outro=st.lists(words, max_size=2).map(tuple),
                     side_switch=st.lists(words, max_size=2).map(tuple))
options = st.builds(TimelineOptions, speed=st.floats(0.5, 2.0), hold=st.one_of(st.none(), st.floats(1, 60)),
                    countdown=st.integers(0, 5))
chime_lengths = st.fixed_dictionaries({k: st.integers(samples(0.2), samples(2.0))
                                       for k in ("hold_start", "midpoint", "side_switch")})


@settings(max_examples=300, deadline=None)
@given(routine=routines, opts=options, chimes=chime_lengths)
def test_timeline_properties(routine, opts, chimes):
    # keep cue `at` inside the hold, as validation guarantees
    routine = Routine(**{**routine.__dict__, "poses": tuple(
        Pose(p.name, p.targets, p.setup, p.hold,
             tuple(Cue(c.text, None if c.at is None else min(c.at, p.hold)) for c in p.cues), p.release)
        for p in routine.poses)})
    tl = timeline_for(routine, opts, chimes)
    events = tl.events

    assert [e.start for e in events] == sorted(e.start for e in events)
    speech = [e for e in events if e.kind == "speech"]
    chime_events = [e for e in events if e.kind == "chime"]
    for a, b in zip(speech, speech[1:]):
        assert a.end <= b.start, (a, b)
    in_hold = [e for e in speech if e.part in ("cue", "countdown")]
    for s in in_hold:
        assert not any(overlaps(s, c) for c in chime_events), s
    holds = [e for e in events if e.kind == "hold"]
    for hold in holds:
        pose = routine.poses[tl.sections[hold.section].pose_number - 1]
        expected = opts.hold if opts.hold is not None else pose.hold
        assert hold.length == samples(expected)
        mid = next(c for c in chime_events if c.section == hold.section and c.part == "midpoint")
        assert mid.start == hold.start + samples(expected / 2)
        for s in in_hold:
            if s.section == hold.section:
                assert hold.start <= s.start and s.end <= hold.end
                if s.part == "cue":
                    assert s.end <= hold.end - samples(QUIET_BEFORE_HOLD_END)
    by_side: dict = {}
    for hold in holds:
        by_side[hold.side] = by_side.get(hold.side, 0) + hold.length
    assert len(set(by_side.values())) == 1
    # every cue is either spoken or reported as left out
    expected_cues = sum(len(p.cues) for p in routine.poses) * len(routine.sides)
    spoken_cues = len([e for e in speech if e.part == "cue"])
    dropped = len([w for w in tl.warnings if "left out" in w and "cue" in w])
    assert spoken_cues + dropped == expected_cues
    assert tl.length >= max(e.end for e in events)
