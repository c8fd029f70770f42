"""The extended routine format on the timeline: poses once and per side, side switches,
rests, settle time, guidance levels (docs/routines.md)."""

from __future__ import annotations

import pytest

from coach.errors import RoutineError
from coach.routine import DEFAULT_SETTLE, load_routine, load_routine_text
from coach.timeline import TimelineOptions, build_timeline, samples, spoken_texts

CHIMES = {"hold_start": samples(1.6), "midpoint": samples(1.1), "side_switch": samples(1.8),
          "rest_start": samples(1.9), "rest_end": samples(1.7)}


def timeline_for(routine, options=TimelineOptions()):
    texts = spoken_texts(routine, options)
    lengths = {t: samples(0.35 * len(t.split()) / options.speed + 0.2) for t in texts}
    return build_timeline(routine, lengths, CHIMES, options)


MIXED = '''
title = "Lower back"
side_switch = "Other side: now the {side}."
[defaults]
hold = 40
settle = 4

[[poses]]
name = "Knees to chest"
sides = []
setup = "Hug both knees in."
release = "Feet down."

[[poses]]
name = "Twist"
group = "twist"
setup = "Knees fall to the {side}."
side_switch = "Bring the knees up and over to the {side}."
release = "Knees back to the middle."

[[poses]]
name = "Figure four"
group = "figure four"
settle = 6
setup = "Cross the {side} ankle over the {other_side} knee."
cues = ["Breathe out and soften.", { text = "Flex the {side} foot to protect the knee.", detail = true }]
release = "Uncross."

[[poses]]
name = "Rest"
rest = true
hold = 60
setup = "Stretch out and rest."
cues = { text = "Let the floor hold you.", at = 20 }
release = "Wiggle your fingers and toes."

[[poses]]
name = "Silent rest"
rest = true
chimes = false
hold = 10
'''


@pytest.fixture(scope="module")
def mixed():
    return load_routine_text(MIXED)


def holds(timeline):
    return [(e.pose, e.side) for e in timeline.events if e.kind == "hold"]


def test_poses_once_and_per_side_in_written_order(mixed):
    tl = timeline_for(mixed)
    assert holds(tl) == [("Knees to chest", None), ("Twist", "right"), ("Twist", "left"),
                         ("Figure four", "right"), ("Figure four", "left"), ("Rest", None),
                         ("Silent rest", None)]
    assert [s.pose_number for s in tl.sections] == [1, 2, 2, 3, 3, 4, 5]


def test_side_switch_rings_and_speaks_wherever_the_side_changes(mixed):
    tl = timeline_for(mixed)
    switches = [e for e in tl.events if e.part == "side_switch"]
    # twist right -> twist left, twist left -> figure four right, figure four right -> left
    assert [(e.pose, e.side) for e in switches] == [("Twist", "left"), ("Figure four", "right"),
                                                    ("Figure four", "left")]
    said = [e.text for e in tl.events if e.part == "switch"]
    # the pose's own switch lines where it has them, else the routine's
    assert said == ["Bring the knees up and over to the left.", "Other side: now the right.",
                    "Other side: now the left."]
    for chime in switches:  # the switch is spoken after its chime and before the setup
        words = next(e for e in tl.events if e.part == "switch" and e.start > chime.start)
        setup = next(e for e in tl.events if e.part == "setup" and e.start > chime.start)
        assert chime.end <= words.start < setup.start


def test_a_block_of_per_side_poses_is_done_side_by_side_as_before():
    routine = load_routine()  # the built-in: three poses on the right, then on the left
    tl = timeline_for(routine)
    names = [p.name for p in routine.poses]
    assert holds(tl) == [(n, "right") for n in names] + [(n, "left") for n in names]
    assert len([e for e in tl.events if e.part == "side_switch"]) == 1


def test_no_switch_across_a_pose_done_once():
    routine = load_routine_text('''
title = "T"
[[poses]]
name = "A"
[[poses]]
name = "Both"
sides = []
[[poses]]
name = "B"
''')
    tl = timeline_for(routine)
    assert holds(tl) == [("A", "right"), ("A", "left"), ("Both", None), ("B", "right"), ("B", "left")]
    assert [e.pose for e in tl.events if e.part == "side_switch"] == ["A", "B"]


def test_settle_is_the_time_between_the_last_setup_line_and_each_hold_start_chime(mixed):
    for speed in (0.75, 1.0, 1.5):
        tl = timeline_for(mixed, TimelineOptions(speed=speed))
        for section in tl.sections:
            pose = mixed.poses[section.pose_number - 1]
            setups = [e for e in tl.events if e.part == "setup" and e.section == section.index]
            start = next((e for e in tl.events if e.section == section.index
                          and e.part in ("hold_start", "rest_start")), None)
            expected = {"Figure four": 6}.get(pose.name, 4)
            if setups:
                assert section.hold_start - setups[-1].end == samples(expected), pose.name
            if start is not None:
                assert start.start == section.hold_start


def test_settle_defaults_to_a_few_seconds():
    routine = load_routine_text('title = "T"\n[[poses]]\nname = "A"\nsetup = "Lie down on your {side}."\n')
    assert routine.settle == DEFAULT_SETTLE >= 2
    tl = timeline_for(routine)
    setup = next(e for e in tl.events if e.part == "setup")
    assert tl.sections[0].hold_start - setup.end == samples(DEFAULT_SETTLE)


def test_a_rest_has_its_own_chimes_and_no_midpoint(mixed):
    tl = timeline_for(mixed)
    rest = next(s for s in tl.sections if s.pose == "Rest")
    events = [e for e in tl.events if e.section == rest.index]
    chimes = [(e.part, e.start) for e in events if e.kind == "chime"]
    assert chimes == [("rest_start", rest.hold_start), ("rest_end", rest.hold_start + samples(60))]
    assert rest.hold_length == samples(60)
    cue = next(e for e in events if e.part == "cue")
    assert cue.start == rest.hold_start + samples(20)
    release = next(e for e in events if e.part == "release")
    assert release.start >= rest.hold_start + samples(60) + CHIMES["rest_end"]  # after the end chime
    silent = next(s for s in tl.sections if s.pose == "Silent rest")
    assert not [e for e in tl.events if e.section == silent.index and e.kind == "chime"]
    assert [e.part for e in tl.events if e.section == silent.index] == ["rest"]


def test_guidance_full_brief_minimal(mixed):
    full = timeline_for(mixed, TimelineOptions(guidance="full"))
    brief = timeline_for(mixed, TimelineOptions(guidance="brief"))
    minimal = timeline_for(mixed, TimelineOptions(guidance="minimal"))

    def said(tl, part):
        return [e.text for e in tl.events if e.kind == "speech" and e.part == part]

    detail = "Flex the right foot to protect the knee."
    assert detail in said(full, "cue") and detail not in said(brief, "cue")
    assert "Breathe out and soften." in said(brief, "cue")
    assert said(brief, "setup") == said(full, "setup") and said(brief, "switch") == said(full, "switch")
    # minimal: only the pose name and side, the chimes and the release
    assert said(minimal, "cue") == [] and said(minimal, "switch") == [] and said(minimal, "intro") == []
    assert said(minimal, "setup") == ["Knees to chest.", "Twist, right.", "Twist, left.", "Figure four, right.",
                                      "Figure four, left.", "Rest.", "Silent rest."]
    assert said(minimal, "release") == said(full, "release")
    chimes = [(e.part, e.pose, e.side) for e in full.events if e.kind == "chime"]
    assert [(e.part, e.pose, e.side) for e in minimal.events if e.kind == "chime"] == chimes
    assert minimal.length < brief.length <= full.length
    assert spoken_texts(mixed, TimelineOptions(guidance="minimal"))[:2] == ["Knees to chest.", "Feet down."]


def test_start_side_applies_to_every_block(mixed):
    tl = timeline_for(mixed, TimelineOptions(start_side="left"))
    assert [h for h in holds(tl) if h[1]] == [("Twist", "left"), ("Twist", "right"),
                                               ("Figure four", "left"), ("Figure four", "right")]


@pytest.mark.parametrize("pose, message", [
    ('sides = []\nsetup = "Lift the {side} leg."',
     'pose 1 "A": setup uses {side}, but this pose is done once (sides = [])'),
    ('rest = true\nsetup = "Lie on your {side}."',
     'pose 1 "A": setup uses {side}, but a rest is done once; add sides = ["right", "left"]'),
    ('chimes = false', 'pose 1 "A": chimes = true/false is for a rest (rest = true)'),
    ('rest = "yes"', 'pose 1 "A": rest must be true or false (no quotes), got text "yes"'),
    ('settle = -1', 'pose 1 "A": settle must be between 0 and 120 seconds, got -1'),
    ('min_hold = 50\nmax_hold = 40', 'pose 1 "A": min_hold (50 s) is above max_hold (40 s)'),
    ('max_hold = 30', 'pose 1 "A": hold (45 s) is above max_hold (30 s), the longest --minutes may make it'),
    ('min_hold = 60', 'pose 1 "A": hold (45 s) is below min_hold (60 s), the shortest --minutes may make it'),
    ('sides = []\ngroup = "g"', 'pose 1 "A": group "g" only joins poses done on each side'),
    ('sides = []\nside_switch = "Now."', 'pose 1 "A": side_switch is spoken when the side changes'),
    ('cues = [{ text = "Breathe.", detail = 1 }]', 'pose 1 "A": cue: detail must be true or false'),
])
def test_bad_new_keys_are_one_clear_line(pose, message):
    with pytest.raises(RoutineError) as caught:
        load_routine_text(f'title = "T"\n[[poses]]\nname = "A"\nhold = 45\n{pose}\n', "mine.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("mine.toml:")


@pytest.mark.parametrize("value, expected", [('"de"', "de"), ('"fr-FR"', "fr-fr"), ('"en_GB"', "en-gb")])
def test_language_codes(value, expected):
    assert load_routine_text(f'title = "T"\nlanguage = {value}\n[[poses]]\nname = "A"\n').language == expected


def test_a_bad_language_code_is_named():
    with pytest.raises(RoutineError, match=r'mine.toml:2: language must be a language code like "de"'):
        load_routine_text('title = "T"\nlanguage = "German"\n[[poses]]\nname = "A"\n', "mine.toml")


def test_the_saved_guidance_setting_knows_the_same_levels():
    from coach.routine import GUIDANCE_LEVELS
    from coach.settings import GUIDANCE, Settings, check_value

    assert GUIDANCE == GUIDANCE_LEVELS and Settings().guidance == "full"
    assert check_value("guidance", "brief") == "brief"
    with pytest.raises(Exception, match="guidance must be one of full, brief, minimal"):
        check_value("guidance", "loud")


# -- properties over generated mixed routines ------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from coach.routine import Cue, Pose, Routine  # noqa: E402

words = st.lists(st.sampled_from(["reach", "breathe", "soften", "your", "{side}", "slowly"]),
                 min_size=1, max_size=10).map(" ".join)
gen_cues = st.lists(st.builds(Cue, words, st.none(), st.booleans()), max_size=3).map(tuple)
gen_poses = st.builds(
    Pose, name=st.sampled_from(["A", "B", "C", "D"]), setup=st.lists(words, max_size=2).map(tuple),
    hold=st.floats(1, 60), cues=gen_cues, release=st.lists(words, max_size=2).map(tuple),
    sides=st.sampled_from([None, (), ("right", "left"), ("left", "right")]), rest=st.booleans(),
    chimes=st.booleans(), settle=st.one_of(st.none(), st.floats(0, 10)), group=st.sampled_from(["", "g", "h"]),
    side_switch=st.one_of(st.none(), st.lists(words, min_size=1, max_size=2).map(tuple)))
gen_routines = st.builds(Routine, title=st.just("generated"), poses=st.lists(gen_poses, min_size=1, max_size=6).map(tuple),
                         sides=st.sampled_from([("right", "left"), ()]), settle=st.floats(0, 8),
                         intro=st.lists(words, max_size=1).map(tuple), side_switch=st.lists(words, max_size=2).map(tuple))
gen_options = st.builds(TimelineOptions, speed=st.floats(0.5, 2.0), guidance=st.sampled_from(["full", "brief", "minimal"]),
                        start_side=st.sampled_from([None, "left"]))


@settings(max_examples=150, deadline=None)
@given(routine=gen_routines, options=gen_options)
def test_mixed_routine_properties(routine, options):
    tl = timeline_for(routine, options)
    events = tl.events
    speech = [e for e in events if e.kind == "speech"]
    chimes = [e for e in events if e.kind == "chime"]
    for a, b in zip(speech, speech[1:]):
        assert a.end <= b.start
    for s in speech:
        assert not any(s.start < c.end and c.start < s.end for c in chimes), s

    # every pose on each of its sides, in block order; the switch exactly where the side changes
    expected = [(n, side) for block in routine.blocks()
                for side in (_order(block.sides, options.start_side) or (None,)) for n in block.pose_numbers]
    assert [(s.pose_number, s.side) for s in tl.sections] == expected
    previous = None
    for section in tl.sections:
        switches = [c for c in chimes if c.section == section.index and c.part == "side_switch"]
        changed = previous is not None and section.side is not None and previous.side is not None \
            and previous.side != section.side
        assert len(switches) == (1 if changed else 0), (previous, section)
        if switches:
            assert switches[0].start == section.start
        previous = section

    for section in tl.sections:
        pose = routine.poses[section.pose_number - 1]
        mine = [e for e in events if e.section == section.index]
        assert section.hold_length == samples(pose.hold)
        setups = [e for e in mine if e.part == "setup"]
        if setups:  # settle: exactly the pose's time to move after the last setup line
            assert section.hold_start - setups[-1].end == samples(routine.settle_of(pose))
        kinds = sorted(c.part for c in mine if c.kind == "chime" and c.part != "side_switch")
        if pose.rest:
            assert kinds == (["rest_end", "rest_start"] if pose.chimes else [])
        else:
            assert kinds == ["hold_start", "midpoint"]
        cue_texts = [e.text for e in mine if e.part == "cue"]
        if options.guidance == "minimal":
            assert not cue_texts and [e.text for e in setups] == [
                f"{pose.name}, {section.side}." if section.side else f"{pose.name}."]
        elif options.guidance == "brief":
            detail = {fill(c.text, section) for c in pose.cues if c.detail}
            kept = {fill(c.text, section) for c in pose.cues if not c.detail}
            assert not (set(cue_texts) & (detail - kept))


def _order(sides, start):
    if not sides:
        return ()
    if start in sides:
        i = sides.index(start)
        return sides[i:] + sides[:i]
    return sides


def fill(text, section):
    return text.replace("{side}", section.side or "")
