"""Session length: --minutes fits the holds (within 5 s, within their bounds), the error for a
length that cannot be reached, and the estimate `coach list` shows."""

from __future__ import annotations

import re

import pytest

from coach.errors import UsageError
from coach.length import TOLERANCE_SECONDS, estimate_seconds, fit_holds, length_range
from coach.routine import builtin_cues_dir, load_routine, load_routine_text
from coach.timeline import TimelineOptions, build_timeline, samples, spoken_texts

CHIMES = {"hold_start": samples(1.6), "midpoint": samples(1.1), "side_switch": samples(1.8),
          "rest_start": samples(1.9), "rest_end": samples(1.7)}


def speech_for(routine, options):
    texts = spoken_texts(routine, options)
    return {t: samples(0.33 * len(t.split()) / options.speed + 0.25) for t in texts}


def fitted_length(routine, options, minutes):
    speech = speech_for(routine, options)
    fit = fit_holds(routine, speech, CHIMES, options, minutes)
    timeline = build_timeline(fit.routine, speech, CHIMES, options)
    assert timeline.length_s == pytest.approx(fit.seconds)
    return fit, timeline


# The shipped routines, by file: collected before any fixture runs, so not through the
# routine search path, which holds the user's own routines (COACH_CONFIG_DIR) too.
BUILTIN_ROUTINES = sorted(builtin_cues_dir().glob("*.toml"))


@pytest.mark.parametrize("path", BUILTIN_ROUTINES, ids=[p.stem for p in BUILTIN_ROUTINES])
@pytest.mark.parametrize("speed", [0.75, 1.0, 1.4])
def test_minutes_within_five_seconds_for_several_lengths_and_speeds(path, speed):
    routine = load_routine(path)
    name = path.stem
    options = TimelineOptions(speed=speed)
    speech = speech_for(routine, options)
    bounds = [routine.hold_bounds(p) for p in routine.poses]
    low, high = length_range(routine, speech, CHIMES, options)
    for fraction in (0.0, 0.3, 0.7, 1.0):
        minutes = (low + fraction * (high - low)) / 60
        fit, timeline = fitted_length(routine, options, minutes)
        assert abs(timeline.length_s - minutes * 60) <= TOLERANCE_SECONDS, (name, speed, minutes)
        for pose, fitted, (lo, hi) in zip(routine.poses, fit.routine.poses, bounds):
            assert lo <= fitted.hold <= hi
        holds = [e.length for e in timeline.events if e.kind == "hold"]
        expected = [samples(fit.routine.poses[s.pose_number - 1].hold) for s in timeline.sections]
        assert holds == expected  # every hold and rest exactly as chosen


def test_holds_are_scaled_together_in_whole_seconds():
    routine = load_routine_text('''
title = "T"
[defaults]
hold = 40
[[poses]]
name = "A"
[[poses]]
name = "B"
hold = 80
''')
    options = TimelineOptions()
    fit, timeline = fitted_length(routine, options, 6)
    a, b = (p.hold for p in fit.routine.poses)
    assert a == int(a) and b == int(b)
    assert b / a == pytest.approx(2, abs=0.05)  # one factor for both
    assert abs(timeline.length_s - 360) <= TOLERANCE_SECONDS


def test_min_hold_and_max_hold_bound_the_scaling():
    routine = load_routine_text('''
title = "T"
[defaults]
hold = 40
min_hold = 35
[[poses]]
name = "A"
max_hold = 50
[[poses]]
name = "B"
''')
    options = TimelineOptions()
    speech = speech_for(routine, options)
    long_fit = fit_holds(routine, speech, CHIMES, options, 5)
    a, b = (p.hold for p in long_fit.routine.poses)
    assert a == 50 and b > 50  # A stops at its max_hold, B takes up the rest
    assert abs(long_fit.seconds - 300) <= TOLERANCE_SECONDS


def test_a_length_that_cannot_be_reached_names_the_shortest_and_longest():
    routine = load_routine()
    options = TimelineOptions(speed=1.2)
    speech = speech_for(routine, options)
    for minutes in (1, 60):
        with pytest.raises(UsageError) as caught:
            fit_holds(routine, speech, CHIMES, options, minutes)
        message = str(caught.value)
        found = re.search(r"lasts from (\d+):(\d\d) .* to (\d+):(\d\d) .*choose --minutes from ([\d.]+) to ([\d.]+)",
                          message)
        assert message.startswith(f"--minutes {minutes}: at speed 1.2 leg-stretches"), message
        assert found, message
        shortest = int(found[1]) * 60 + int(found[2])
        longest = int(found[3]) * 60 + int(found[4])
        assert not shortest - 5 <= minutes * 60 <= longest + 5
        # the suggested range can be reached
        for suggested in (float(found[5]), float(found[6])):
            fit = fit_holds(routine, speech, CHIMES, options, suggested)
            assert abs(fit.seconds - suggested * 60) <= TOLERANCE_SECONDS


def test_minutes_and_hold_together_is_an_error():
    routine = load_routine()
    options = TimelineOptions(hold=20)
    with pytest.raises(UsageError, match="--minutes and --hold"):
        fit_holds(routine, speech_for(routine, options), CHIMES, options, 10)


def test_the_estimate_follows_the_timeline_and_the_speed():
    routine = load_routine()
    slow, fast = estimate_seconds(routine, TimelineOptions(speed=0.8)), estimate_seconds(routine, TimelineOptions(speed=1.5))
    assert slow > fast > routine.total_hold_seconds


@pytest.mark.parametrize("name, hold_range, minutes, says", [
    ("tests/data/short.toml", None, 5, "choose --minutes from 1 to "),  # 0:50 to 1:22
    ("leg-stretches", (2500, 5000), 30, "--minutes takes 1 to 240: change min_hold/max_hold"),  # 4 h 10 on
])
def test_the_lengths_suggested_instead_are_ones_minutes_takes(name, hold_range, minutes, says):
    from dataclasses import replace

    from coach.length import MAX_MINUTES, MIN_MINUTES

    routine = load_routine(name)
    if hold_range:
        low, high = hold_range
        routine = replace(routine, poses=tuple(replace(p, hold=low, min_hold=low, max_hold=high)
                                               for p in routine.poses))
    options = TimelineOptions()
    speech = speech_for(routine, options)
    shortest, _ = length_range(routine, speech, CHIMES, options)
    assert (shortest < MIN_MINUTES * 60) if not hold_range else (shortest > MAX_MINUTES * 60)
    with pytest.raises(UsageError) as caught:
        fit_holds(routine, speech, CHIMES, options, minutes)
    message = str(caught.value)
    assert says in message, message
    found = re.search(r"choose --minutes from ([\d.]+) to ([\d.]+)", message)
    if found:
        assert MIN_MINUTES <= float(found[1]) <= float(found[2]) <= MAX_MINUTES
        for suggested in (float(found[1]), float(found[2])):
            fit = fit_holds(routine, speech, CHIMES, options, suggested)
            assert abs(fit.seconds - suggested * 60) <= TOLERANCE_SECONDS
