"""grow_timeline: the timeline as far as clips are known, and a voice speed that changes as it plays."""

from __future__ import annotations

import pytest

from coach.routine import load_routine
from coach.timeline import (
    TimelineOptions,
    build_timeline,
    grow_timeline,
    samples,
    speed_at,
    spoken_texts,
)

CHIMES = {"hold_start": samples(1.6), "midpoint": samples(1.1), "side_switch": samples(1.8),
          "rest_start": samples(1.0), "rest_end": samples(1.0)}


def length(text: str, speed: float) -> int:
    """A stand-in for synthesis: 0.35 s a word at speed 1."""
    return samples(0.35 * len(text.split()) / speed + 0.2)


@pytest.fixture(scope="module")
def builtin():
    return load_routine()


def test_with_every_clip_known_it_is_the_whole_timeline(builtin):
    options = TimelineOptions(countdown=3)
    whole = build_timeline(builtin, {t: length(t, 1.0) for t in spoken_texts(builtin, options)}, CHIMES, options)
    grown = grow_timeline(builtin, length, CHIMES, options)
    assert grown == whole and grown.complete


def test_a_partial_timeline_is_a_prefix_that_stops_before_a_spoken_line_never_in_a_hold(builtin):
    options = TimelineOptions(countdown=3)
    whole = grow_timeline(builtin, length, CHIMES, options)
    texts = spoken_texts(builtin, options)
    for missing in texts[::3]:
        part = grow_timeline(builtin, lambda t, s: None if t == missing else length(t, s), CHIMES, options)
        assert not part.complete
        assert part.events == tuple(e for e in whole.events if e.start < part.length)
        assert all(e.end <= part.length for e in part.events)
        for section in whole.sections:  # never inside a hold
            assert not section.hold_start < part.length < section.hold_start + section.hold_length


def test_a_speed_change_leaves_what_came_before_it_and_every_hold_exact(builtin):
    whole = grow_timeline(builtin, length, CHIMES)
    section = whole.sections[1]
    at = section.hold_start + samples(3.0)  # during the second hold
    changed = grow_timeline(builtin, length, CHIMES, speed_changes=[(at, 0.6)])
    assert [e for e in changed.events if e.start < at] == [e for e in whole.events if e.start < at]
    for old, new in zip(whole.sections, changed.sections):
        assert new.hold_length == old.hold_length
    holds = [e for e in changed.events if e.kind == "hold"]
    for hold in holds:
        mid = [e for e in changed.events if e.part == "midpoint" and e.section == hold.section][0]
        assert mid.start - hold.start == samples(hold.duration_s / 2)
    later = [e for e in changed.events if e.kind == "speech" and e.start >= at]
    assert later and all(e.length == length(e.text, 0.6) for e in later)
    assert changed.length > whole.length  # slower from there on
    assert speed_at(TimelineOptions(), [(at, 0.6)], at - 1) == 1.0


def test_cues_that_no_longer_fit_after_a_change_in_their_hold_are_left_out_with_a_warning(builtin):
    whole = grow_timeline(builtin, length, CHIMES, TimelineOptions(hold=20))
    section = whole.sections[0]
    at = section.hold_start + 1
    changed = grow_timeline(builtin, length, CHIMES, TimelineOptions(hold=20), speed_changes=[(at, 0.5)])
    cues = [e for e in changed.events if e.part == "cue" and e.section == 0]
    old_cues = [e for e in whole.events if e.part == "cue" and e.section == 0]
    assert len(cues) < len(old_cues)
    assert any("no longer fits at speed 0.5" in w for w in changed.warnings)
    for a, b in zip(cues, cues[1:]):
        assert a.end <= b.start
    assert changed.sections[0].hold_length == section.hold_length
