"""The routine loader: valid files load as written, and every bad input is one clear line.

Each bad-input test checks the parts of the message a person needs: the file, the line
where there is one, `pose N "Name"`, the field, what was expected and what was found.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest

import coach.routine.load as routine_load
import coach.routine.validate as routine_validate
from coach.errors import CoachError, RoutineError, RoutineNotFoundError
from coach.routine import (
    MAX_FILE_BYTES,
    MAX_POSES,
    MAX_TEXT_CHARS,
    Cue,
    available_routines,
    builtin_cues_dir,
    estimate_speech_seconds,
    fill_placeholders,
    load_routine,
    load_routine_text,
    resolve_routine,
    user_cues_dir,
)
from coach.timeline import TimelineOptions, spoken_texts

DATA = Path(__file__).parent / "data"
DOCS = Path(__file__).parent.parent / "docs" / "routines.md"


def routine_text(pose: str = "", top: str = "", defaults: str = "", more_poses: str = "") -> str:
    """A small valid routine; the arguments add lines to its parts."""
    return (
        f'title = "Test routine"\n{top}\n'
        f"[defaults]\nhold = 30\n{defaults}\n"
        f'[[poses]]\nname = "Leg up"\nsetup = "Lift the {{side}} leg."\n{pose}\n'
        f"{more_poses}"
    )


def line_of(text: str, marker: str) -> int:
    """1-based number of the first line containing marker: where an error should point."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


def error_of(action) -> RoutineError:
    with pytest.raises(RoutineError) as caught:
        action()
    err = caught.value
    message = str(err)
    assert "\n" not in message and "\r" not in message, message
    assert isinstance(err, CoachError) and err.exit_code == 1
    return err


def file_error(tmp_path: Path, text: str | bytes, name: str = "mine.toml") -> tuple[str, Path]:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(error_of(lambda: load_routine(path))), path


# ---------------------------------------------------------------------------
# Valid routines load as written

def test_builtin_routine_loads_with_three_poses_on_two_sides():
    routine = load_routine()  # no argument: the built-in routine
    assert routine.source.name == "leg-stretches.toml"
    assert [p.name for p in routine.poses] == ["Leg up", "Leg to the side", "Leg across the body"]
    assert routine.sides == ("right", "left")
    assert "Rachel Scott" in routine.credit and "strap" in routine.props
    assert all(p.hold >= 30 and p.cues and p.setup and p.release for p in routine.poses)
    assert routine.side_switch and routine.intro and routine.outro
    assert routine.total_hold_seconds == sum(p.hold for p in routine.poses) * 2


def test_builtin_routine_found_by_name_and_by_path():
    by_name = load_routine("leg-stretches")
    by_path = load_routine(builtin_cues_dir() / "leg-stretches.toml")
    assert by_name == by_path


def test_short_test_routine_is_small_and_valid():
    routine = load_routine(DATA / "short.toml")
    assert len(routine.poses) == 2 and routine.sides == ("right", "left")
    assert all(p.hold == 4 and not p.cues and p.setup and p.release for p in routine.poses)
    assert len(routine.intro) == len(routine.outro) == len(routine.side_switch) == 1


def test_every_field_is_read(tmp_path):
    (tmp_path / "bell.wav").write_bytes(b"RIFF")
    text = """
title = "Evening"
description = "Calm."
credit = "Me"
props = ["strap", "block"]
intro = ["Hello.", "Lie down."]
outro = "Bye."
side_switch = "Other side: {side}, not {other_side}."
[defaults]
hold = 40
sides = ["left", "right"]
speed = 0.9
voice = "en-gb"
[chimes]
midpoint = "bell.wav"
[[poses]]
name = "Twist"
targets = "spine"
setup = ["Knees to the {side}."]
hold = 50.5
cues = ["Breathe.", { text = "Look {other_side}.", at = 30 }]
release = "Come back."
[[poses]]
name = "Rest"
"""
    path = tmp_path / "evening.toml"
    path.write_text(text)
    routine = load_routine(path)
    assert (routine.title, routine.description, routine.credit) == ("Evening", "Calm.", "Me")
    assert routine.props == ("strap", "block") and routine.intro == ("Hello.", "Lie down.")
    assert routine.outro == ("Bye.",) and routine.sides == ("left", "right")
    assert (routine.hold, routine.speed, routine.voice) == (40, 0.9, "en-gb")
    assert routine.chimes == {"midpoint": tmp_path / "bell.wav"}
    twist, rest = routine.poses
    assert twist.hold == 50.5 and twist.targets == "spine"
    assert twist.cues == (Cue("Breathe."), Cue("Look {other_side}.", 30.0))
    assert rest.hold == 40 and rest.setup == () and rest.cues == ()  # defaults.hold applies
    assert routine.name == "evening"


def test_defaults_when_left_out():
    routine = load_routine_text('title = "T"\n[[poses]]\nname = "A"\n')
    assert routine.sides == ("right", "left") and routine.hold == 30 and routine.speed is None
    assert routine.chimes == {} and routine.intro == ()


def test_a_routine_without_sides():
    routine = load_routine_text('title = "T"\n[defaults]\nsides = []\n[[poses]]\nname = "Breathe"\n')
    assert routine.sides == () and routine.total_hold_seconds == 30


def test_accented_and_cjk_text_loads_unchanged(tmp_path):
    text = routine_text(pose='cues = ["Détendez la jambe {side}, très doucement.", "ゆっくり息を吐いて。"]',
                        top='intro = "Überall ruhig: ça va, señora. 放松。"')
    path = tmp_path / "intl.toml"
    path.write_text(text, encoding="utf-8")
    routine = load_routine(path)
    assert routine.intro == ("Überall ruhig: ça va, señora. 放松。",)
    assert [c.text for c in routine.poses[0].cues] == ["Détendez la jambe {side}, très doucement.", "ゆっくり息を吐いて。"]


def test_line_breaks_tabs_and_odd_spaces_become_single_spaces():
    text = routine_text(pose='cues = ["""Breathe in,\n   and out."""]', top='intro = "Lie\\tdown\u00a0now."')
    routine = load_routine_text(text)
    assert routine.intro == ("Lie down now.",)
    assert routine.poses[0].cues[0].text == "Breathe in, and out."


def test_a_utf8_byte_order_mark_is_fine(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + routine_text().encode())
    assert load_routine(path).title == "Test routine"


def test_doubled_braces_are_literal_braces():
    routine = load_routine_text(routine_text(pose='release = "Say {{ok}} to the {side} leg."'))
    assert fill_placeholders(routine.poses[0].release[0], "right", "left") == "Say {ok} to the right leg."


def test_braces_in_texts_that_are_not_spoken_are_kept_as_written():
    routine = load_routine_text(routine_text(top='description = "Legs {and} hips"'))
    assert routine.description == "Legs {and} hips"


def test_fill_placeholders():
    assert fill_placeholders("{side} then {other_side}", "right", "left") == "right then left"
    assert fill_placeholders("no sides", None, None) == "no sides"


def test_doubled_braces_are_one_brace_in_every_spoken_text():
    # docs/routines.md: "To say a brace itself in a spoken text, double it". The intro and outro
    # were spoken with both braces ("Braces {{ like this }}"), the pose texts with one.
    from coach.timeline import spoken_texts
    text = ('title = "T"\nintro = "In {{ and }} out."\noutro = ["Done {{side}}."]\n'
            '[[poses]]\nname = "A"\nsetup = "Up {{x}} {side}."\n')
    routine = load_routine_text(text)
    assert routine.intro == ("In { and } out.",) and routine.outro == ("Done {side}.",)
    said = spoken_texts(routine)
    assert said[0] == "In { and } out." and "Up {x} right." in said and said[-1] == "Done {side}."


def test_speech_estimate_grows_with_words_and_shrinks_with_speed():
    one, ten = estimate_speech_seconds("word"), estimate_speech_seconds("word " * 10)
    assert ten > 5 * one
    assert math.isclose(estimate_speech_seconds("a b c d", 2.0) - 0.3, (estimate_speech_seconds("a b c d") - 0.3) / 2)


# ---------------------------------------------------------------------------
# Reading the file

def test_malformed_toml_names_the_line_and_column(tmp_path):
    text = 'title = "T"\n[[poses]]\nname = "A"\nhold = \n'
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}:4: not valid TOML at column 8: ")


def test_unclosed_string_names_its_line(tmp_path):
    text = routine_text(pose='release = "Let go\ncues = []')
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, 'release')}: not valid TOML")


def test_not_utf8_names_the_line_and_byte(tmp_path):
    text = 'title = "T"\n[[poses]]\nname = "Caf\xe9"\n'.encode("latin-1")
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}:3: is not UTF-8 text (byte 0xe9")
    assert "save the file as UTF-8" in message


def test_utf16_is_named(tmp_path):
    message, path = file_error(tmp_path, routine_text().encode("utf-16"))
    assert message.startswith(f"{path}:1: is saved as UTF-16; save it as UTF-8")


def test_missing_file_suggests_a_file_beside_it(tmp_path):
    (tmp_path / "evening.toml").write_text(routine_text())
    path = tmp_path / "evning.toml"
    err = error_of(lambda: load_routine(path))
    assert isinstance(err, RoutineNotFoundError)
    assert str(err).startswith(f'{path}: no such file (did you mean "evening.toml"?)')


def test_missing_file_suggests_the_file_beside_it_before_a_routine_and_not_any_toml(tmp_path, monkeypatch):
    # A routine of the user's named much like it (evening-hips) is not what a path meant; and
    # names that share only ".toml" with it are no suggestion at all.
    config = tmp_path / "config"
    (config / "routines").mkdir(parents=True)
    (config / "routines" / "evening-hips.toml").write_text(routine_text())
    monkeypatch.setenv("COACH_CONFIG_DIR", str(config))
    here = tmp_path / "here"
    here.mkdir()
    for name in ("evening.toml", "enc_cr.toml", "uk9.toml"):
        (here / name).write_text(routine_text())
    assert str(error_of(lambda: load_routine(here / "evning.toml"))).startswith(
        f'{here / "evning.toml"}: no such file (did you mean "evening.toml"?);')
    assert str(error_of(lambda: load_routine(here / "nosuch.toml"))).startswith(
        f'{here / "nosuch.toml"}: no such file; check the name')


def test_missing_file_suggests_a_routine_name(tmp_path):
    path = tmp_path / "leg-strech.toml"
    message = str(error_of(lambda: load_routine(path)))
    assert message.startswith(f'{path}: no such file (did you mean "leg-stretches"?)') and "coach list" in message


def test_a_folder_is_not_a_routine(tmp_path):
    folder = tmp_path / "routines.toml"
    folder.mkdir()
    message = str(error_of(lambda: load_routine(folder)))
    assert message == f"{folder}: is a folder, not a routine file; name a .toml file inside it"


def test_a_file_over_1_mib(tmp_path):
    text = routine_text() + "# padding\n" * (MAX_FILE_BYTES // 10)
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}: is over 1 MiB; a routine may be at most 1 MiB")
    assert "over 1 MiB" in str(error_of(lambda: load_routine_text(text)))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_an_endless_file_is_not_read_to_the_end():
    message = str(error_of(lambda: load_routine("/dev/zero")))
    assert message == ("/dev/zero: is not a regular file but a character device; "
                       "give the path of a routine file (.toml)")


def test_a_symlink_loop(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.symlink_to(b)
    b.symlink_to(a)
    message = str(error_of(lambda: load_routine(a)))
    assert message.startswith(f"{a}: is a symbolic link loop")


def test_a_broken_symlink(tmp_path):
    link = tmp_path / "gone.toml"
    link.symlink_to(tmp_path / "deleted.toml")
    assert str(error_of(lambda: load_routine(link))).startswith(f"{link}: is a broken symbolic link")


def test_an_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.toml"
    path.write_text(routine_text())
    if os.geteuid() == 0:  # root reads any file, so make the open itself fail the same way
        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(routine_load, "open", denied, raising=False)
    else:
        path.chmod(0)
    message = str(error_of(lambda: load_routine(path)))
    assert message == f"{path}: cannot be read: permission denied; check the file's permissions"


def test_a_name_too_long_for_the_file_system(tmp_path):
    path = tmp_path / ("x" * 300 + ".toml")
    assert str(error_of(lambda: load_routine(path))).startswith(f"{path}: has a name too long")


def test_a_path_with_a_nul_byte():
    assert "NUL character" in str(error_of(lambda: load_routine("bad\0name.toml")))


# ---------------------------------------------------------------------------
# Routine names

def test_an_unknown_name_suggests_close_names():
    err = error_of(lambda: resolve_routine("leg-strech"))
    assert isinstance(err, RoutineNotFoundError)
    assert str(err).startswith('no routine named "leg-strech" (did you mean "leg-stretches"?); see `coach list`')


def test_a_word_inside_a_name_is_suggested():
    assert '(did you mean "leg-stretches"?)' in str(error_of(lambda: load_routine("stretches")))


def test_a_name_like_nothing_gets_no_suggestion():
    message = str(error_of(lambda: load_routine("qqqq")))
    assert "did you mean" not in message and "coach list" in message and "path to a .toml" in message


def test_an_empty_name():
    assert "no routine given" in str(error_of(lambda: load_routine("  ")))


def test_a_very_long_name_is_shortened_in_the_message():
    message = str(error_of(lambda: load_routine("x" * 5000)))
    assert len(message) < 200 and message.startswith('no routine named "xxx')


def test_user_routines_are_listed_and_shadow_builtin_ones():
    folder = user_cues_dir()
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text(routine_text())
    (folder / "leg-stretches.toml").write_text(routine_text())
    found = available_routines()
    assert found["mine"] == folder / "mine.toml"
    assert found["leg-stretches"] == folder / "leg-stretches.toml"
    assert load_routine("leg-stretches").title == "Test routine"
    assert '(did you mean "mine"?)' in str(error_of(lambda: load_routine("mien")))


def test_a_file_in_the_current_folder_named_without_toml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("myroutine").write_text(routine_text())
    assert load_routine("myroutine").title == "Test routine"


# ---------------------------------------------------------------------------
# Structure

@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_an_empty_routine(tmp_path, text):
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}: the routine is empty: it needs a title and at least one [[poses]]")


def test_no_poses(tmp_path):
    message, path = file_error(tmp_path, 'title = "T"\n')
    assert message.startswith(f"{path}: the routine has no poses: add a [[poses]] table")


def test_no_title(tmp_path):
    message, path = file_error(tmp_path, '[[poses]]\nname = "A"\n')
    assert message.startswith(f"{path}: the routine has no title; add a line like title =")


def test_poses_with_single_brackets(tmp_path):
    text = 'title = "T"\n[poses]\nname = "A"\n'
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}:2: poses must be written [[poses]] with double brackets")


@pytest.mark.parametrize("tail, expected", [
    # A [poses] after a [[poses]]: tomllib says "Cannot declare ('poses',) twice".
    ('[poses]\nname = "B"\n', "poses must be written [[poses]] with double brackets, once above each pose; "
                               "found [poses]"),
    ('[[poses.cues]]\ntext = "x"\n[poses.cues]\ntext = "y"\n',
     "poses.cues must be written [[poses.cues]] with double brackets, once above each cue; found [poses.cues]"),
    ('[defaults]\nhold = 5\n', "[defaults] is written twice; keep one [defaults] line with all of its keys below it"),
])
def test_a_table_declared_twice_says_what_to_write(tmp_path, tail, expected):
    text = 'title = "T"\n[defaults]\nhold = 3\n[[poses]]\nname = "A"\n' + tail
    message, path = file_error(tmp_path, text)
    line = len(text.splitlines()) - tail.count("\n") + 1 + (2 if "poses.cues" in tail else 0)
    assert message == f"{path}:{line}: {expected}"


def test_a_pose_without_a_name_points_at_its_header(tmp_path):
    text = routine_text(more_poses='[[poses]]\nhold = 20\n')
    message, path = file_error(tmp_path, text)
    header = [n for n, line in enumerate(text.splitlines(), 1) if line == "[[poses]]"][1]
    assert message == f'{path}:{header}: pose 2: has no name; add a line like name = "Leg up" to this [[poses]] table'


def test_too_many_poses(tmp_path):
    text = 'title = "T"\n' + '[[poses]]\nname = "A"\nhold = 1\n' * (MAX_POSES + 1)
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}:") and f"the routine has {MAX_POSES + 1} poses; at most {MAX_POSES}" in message


def test_a_session_over_four_hours(tmp_path):
    text = 'title = "T"\n[defaults]\nhold = 3600\n' + '[[poses]]\nname = "A"\n' * 3
    message, path = file_error(tmp_path, text)
    assert message == (f"{path}: the session would last about 6.0 hours (3 poses x 2 sides); "
                       "a routine may last at most 4 hours: shorten holds or remove poses")


def test_a_session_just_under_four_hours_loads():
    text = 'title = "T"\n[defaults]\nhold = 3500\n' + '[[poses]]\nname = "A"\n' * 2
    assert load_routine_text(text).total_hold_seconds == 4 * 3500


def test_deeply_nested_toml(tmp_path):
    message, path = file_error(tmp_path, "a = " + "[" * 5000 + "]" * 5000 + "\n")
    assert message.startswith(f"{path}: is nested too deeply to be a routine")


def test_nested_values_where_a_text_belongs_are_shown_briefly(tmp_path):
    text = routine_text(pose="cues = " + "[" * 60 + "]" * 60)
    message, path = file_error(tmp_path, text)
    assert message.startswith(f'{path}:{line_of(text, "cues")}: pose 1 "Leg up": cue must be text in quotes, got a list [')
    assert len(message) < 300


def test_a_number_with_thousands_of_digits(tmp_path):
    text = routine_text(pose="hold = " + "9" * 5000)
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, 'hold = 9')}: has a number with thousands of digits")


# ---------------------------------------------------------------------------
# Unknown keys

@pytest.mark.parametrize("part, line, key, where, hint", [
    ("pose", "hodl = 20", "hodl", "the pose", '(did you mean "hold"?)'),
    ("top", 'titel = "x"', "titel", "the routine", '(did you mean "title"?)'),
    ("defaults", 'sidse = ["a"]', "sidse", "[defaults]", '(did you mean "sides"?)'),
    ("pose", 'cues = [{ txt = "Breathe." }]', "txt", "cue", '(did you mean "text"?)'),
    ("pose", 'outro = "Bye."', "outro", "the pose", "(outro belongs at the top of the file"),
    ("top", "hold = 20", "hold", "the routine", "(hold belongs in [defaults] or in a [[poses]] table)"),
    ("defaults", 'name = "A"', "name", "[defaults]", "(name belongs in a [[poses]] table; is a [[poses]] line missing"),
    ("top", "zzz = 1", "zzz", "the routine", "(allowed: title, description"),
    # A key that belongs elsewhere is sent there, not to a look-alike ("title": "settle").
    ("pose", 'title = "x"', "title", "the pose", "(title belongs at the top of the file"),
    ("pose", 'credit = "x"', "credit", "the pose", "(credit belongs at the top of the file"),
    ("pose", 'props = ["x"]', "props", "the pose", "(props belongs at the top of the file"),
    ("defaults", 'title = "x"', "title", "[defaults]", "(title belongs at the top of the file"),
    ("top", "settle = 4", "settle", "the routine", "(settle belongs in [defaults] or in a [[poses]] table)"),
    ("top", "sides = []", "sides", "the routine", "(sides belongs in [defaults] or in a [[poses]] table)"),
    ("top", "min_hold = 4", "min_hold", "the routine", "(min_hold belongs in [defaults] or in a [[poses]] table)"),
    ("pose", 'cues = [{ text = "Breathe.", hold = 5 }]', "hold", "cue", "(hold belongs to the pose, not to one of its cues"),
])
def test_unknown_keys(tmp_path, part, line, key, where, hint):
    text = routine_text(**{part: line})
    message, path = file_error(tmp_path, text)
    pose = 'pose 1 "Leg up": ' if part == "pose" else ""
    assert message.startswith(f'{path}:{line_of(text, line)}: {pose}unknown key "{key}" in {where} {hint}')


def test_unknown_chime_kind(tmp_path):
    text = routine_text(top='[chimes]\nmidpiont = "bell.wav"\n')
    message, path = file_error(tmp_path, text)
    assert message == f'{path}:{line_of(text, "midpiont")}: unknown key "midpiont" in [chimes] (did you mean "midpoint"?)'


def test_a_title_below_chimes_is_told_it_is_in_that_table(tmp_path):
    text = '[chimes]\nmidpoint = "bell.wav"\n' + routine_text()
    message, path = file_error(tmp_path, text)
    assert message.startswith(f'{path}:{line_of(text, "title")}: unknown key "title" in [chimes] (title belongs at the top')


def test_an_unknown_table(tmp_path):
    text = 'title = "T"\n[[pose]]\nname = "A"\n'
    message, path = file_error(tmp_path, text)
    assert message.startswith(f'{path}:2: unknown key "pose" in the routine (did you mean "poses"')


# ---------------------------------------------------------------------------
# Types and ranges

@pytest.mark.parametrize("part, line, expected", [
    ("pose", 'hold = "45"', 'hold must be a number of seconds, got text "45" (remove the quotes)'),
    ("pose", "hold = true", "hold must be a number of seconds, got true"),
    ("pose", "release = 5", "release must be text in quotes, or a list of texts, got a whole number 5"),
    ("pose", "release = [1.5]", "release must be text in quotes, got a number 1.5"),
    ("pose", "cues = 5", 'cues must be a list of texts, or of tables like { text = "...", at = 10 }, got a whole number 5'),
    ("pose", "name = 7", "name must be text in quotes, got a whole number 7"),
    ("pose", "targets = []", "targets must be text in quotes, got a list []"),
    ("top", "credit = 1979-05-27", "credit must be text in quotes, got a date or time 1979-05-27"),
    ("top", 'props = {a = "b"}', 'props must be text in quotes, got a table { a = "b" }'),
    ("top", 'props = ["strap", 5]', "props item 2 must be text in quotes, got a whole number 5"),
    ("top", "intro = false", "intro must be text in quotes, or a list of texts, got false"),
    ("defaults", 'sides = "right"', 'defaults.sides must be a list of side names like ["right", "left"] (or [] for none), got text "right"'),
    ("defaults", "speed = 3", "defaults.speed must be between 0.5 and 2, got 3"),
    ("defaults", 'voice = ""', "defaults.voice is empty; write some text or remove the line"),
])
def test_wrong_types(tmp_path, part, line, expected):
    text = routine_text(**{part: line})
    if line.startswith("name"):
        text = text.replace('name = "Leg up"\n', "", 1)
    message, path = file_error(tmp_path, text)
    pose = 'pose 1: ' if line.startswith("name") else 'pose 1 "Leg up": ' if part == "pose" else ""
    assert message == f"{path}:{line_of(text, line)}: {pose}{expected}"


def test_wrong_type_for_a_table(tmp_path):
    message, path = file_error(tmp_path, 'title = "T"\ndefaults = 5\nchimes = 1\n[[poses]]\nname = "A"\n')
    assert message == f"{path}:2: defaults must be a table, written [defaults] on its own line, got a whole number 5"


@pytest.mark.parametrize("value, shown", [
    ("0", "0"), ("-5", "-5"), ("0.5", "0.5"), ("3601", "3601"), ("1e9", "1e+09"),
    ("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("9" * 400, "a 400-digit number"),
])
def test_holds_out_of_range(tmp_path, value, shown):
    text = routine_text(pose=f"hold = {value}")
    message, path = file_error(tmp_path, text)
    assert message == f'{path}:{line_of(text, f"hold = {value}")}: pose 1 "Leg up": hold must be between 1 and 3600 seconds, got {shown}'


def test_a_default_hold_out_of_range_names_defaults(tmp_path):
    text = routine_text(defaults="").replace("hold = 30", "hold = -5")
    message, path = file_error(tmp_path, text)
    assert message == f"{path}:{line_of(text, 'hold = -5')}: defaults.hold must be between 1 and 3600 seconds, got -5"


def test_an_inline_defaults_table_still_names_the_line(tmp_path):
    text = 'title = "T"\ndefaults = { hold = -5 }\n[[poses]]\nname = "A"\nhold = 10\n'
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}:2: defaults.hold must be between 1 and 3600")


def test_the_right_pose_is_named(tmp_path):
    text = routine_text(more_poses='[[poses]]\nname = "Leg to the side"\nhold = -5\n')
    message, path = file_error(tmp_path, text)
    assert message == f'{path}:{line_of(text, "hold = -5")}: pose 2 "Leg to the side": hold must be between 1 and 3600 seconds, got -5'


@pytest.mark.parametrize("sides, expected", [
    ('["right", "right"]', 'defaults.sides names a side twice, got ["right", "right"]'),
    ('["Left", "left"]', 'defaults.sides names a side twice: "Left" and "left" differ only in case'),
    ('["left side", "Left  Side"]', 'defaults.sides names a side twice: "left side" and "Left Side" differ only in case'),
    ('["a", "b", "c", "d", "e"]', "defaults.sides has 5 sides; at most 4"),
    ('["right", ""]', "defaults.sides item 2 is empty"),
    ('["right", 1]', "defaults.sides item 2 must be text in quotes, got a whole number 1"),
])
def test_bad_sides(tmp_path, sides, expected):
    text = routine_text(defaults=f"sides = {sides}")
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, 'sides')}: {expected}")


# ---------------------------------------------------------------------------
# Texts

@pytest.mark.parametrize("part, line, expected", [
    ("pose", 'release = ""', "release is empty; write the words to speak or remove the line"),
    ("pose", 'release = ["Lower.", "   "]', "release line 2 is empty"),
    ("pose", 'cues = ["Breathe.", ""]', "cue 2 is empty"),
    ("pose", 'cues = [{ text = "" }]', "cue is empty"),
    ("top", 'intro = ""', "intro is empty"),
    ("pose", 'name = ""', "name is empty"),
])
def test_empty_texts(tmp_path, part, line, expected):
    text = routine_text(**{part: line}).replace('name = "Leg up"\n', "") if line.startswith("name") \
        else routine_text(**{part: line})
    message, path = file_error(tmp_path, text)
    pose = "pose 1: " if line.startswith("name") else 'pose 1 "Leg up": ' if part == "pose" else ""
    assert message.startswith(f"{path}:{line_of(text, line)}: {pose}{expected}")


def test_an_empty_title(tmp_path):
    message, path = file_error(tmp_path, routine_text().replace('title = "Test routine"', 'title = "  "'))
    assert message == f"{path}:1: title is empty; write some text"  # a title cannot be left out


@pytest.mark.parametrize("part, line, shown", [
    ("pose", 'release = ["Lower.", "..."]', '"..."'),
    ("pose", 'cues = ["\u2014 \u2014"]', '"\u2014 \u2014"'),  # visible signs as they are
    ("top", 'intro = ["Welcome.", "\u200b"]', '"\\u200b"'),  # an invisible space only, as its code
    ("top", 'intro = ["\U0001f642"]', '"\U0001f642"'),  # an emoji as itself, not as UTF-16 halves
])
def test_a_spoken_line_with_nothing_to_say_is_refused_where_it_is(tmp_path, part, line, shown):
    # espeak makes no sound of it: found here, with its place, not as a speech error later.
    text = routine_text(**{part: line})
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, line)}: "), message
    assert f"has nothing to say ({shown}: no letter or digit)" in message, message


def test_a_spoken_line_of_a_placeholder_alone_is_something_to_say(tmp_path):
    from coach.routine import load_routine

    path = tmp_path / "side.toml"
    path.write_text(routine_text(pose='release = ["{side}."]'), encoding="utf-8")
    assert load_routine(str(path)).poses[0].release == ("{side}.",)


def test_a_cue_table_without_text(tmp_path):
    text = routine_text(pose="cues = [{ at = 5 }]")
    message, path = file_error(tmp_path, text)
    assert message.startswith(f'{path}:{line_of(text, "cues")}: pose 1 "Leg up": cue has no text')


@pytest.mark.parametrize("placeholder, hint", [
    ("{sid}", " (did you mean {side}?)"),
    ("{other}", " (did you mean {other_side}?)"),
    ("{leg}", ""),
    ("{}", ""),
    ("{0}", ""),
])
def test_unknown_placeholders(tmp_path, placeholder, hint):
    line = f'release = "Lower the {placeholder} leg."'
    text = routine_text(pose=line)
    message, path = file_error(tmp_path, text)
    assert message == (f'{path}:{line_of(text, line)}: pose 1 "Leg up": release has an unknown placeholder '
                       f"{placeholder}{hint}; the placeholders are {{side}} and {{other_side}} "
                       "(write {{ and }} for a brace to keep)")


def test_the_line_with_the_bad_placeholder_is_named(tmp_path):
    text = routine_text(pose='cues = [\n  "Breathe.",\n  "Reach through the {sied} heel.",\n]')
    message, path = file_error(tmp_path, text)
    assert message.startswith(f'{path}:{line_of(text, "sied")}: pose 1 "Leg up": cue 2 has an unknown placeholder {{sied}}')


@pytest.mark.parametrize("value", ["Lift the {side leg.", "Lift the side} leg.", "Lift {{side} leg."])
def test_unmatched_braces(tmp_path, value):
    line = f'release = "{value}"'
    text = routine_text(pose=line)
    message, path = file_error(tmp_path, text)
    assert message.startswith(f'{path}:{line_of(text, line)}: pose 1 "Leg up": release has an unmatched brace in "{value}"')
    assert "{{ and }} for a brace to keep" in message


def test_a_placeholder_with_a_format(tmp_path):
    message, _ = file_error(tmp_path, routine_text(pose='release = "Lower {side:>9}."'))
    assert message.endswith("release has {side:>9} with 1 form, but it is spoken for 2 sides (right, left); "
                            "give one form per side in that order, e.g. {side:right|left}")
    message, _ = file_error(tmp_path, routine_text(pose='release = "Lower {side!r}."'))
    assert message.endswith("release has {side!r}; write {side}, or {side:form|form} with a form of the word "
                            "for each side")


GERMAN_SIDES = 'sides = ["rechts", "links"]'


def test_side_forms_give_each_side_its_own_word():
    text = routine_text(defaults=GERMAN_SIDES, top='side_switch = "Jetzt die {side:rechte|linke} Seite."',
                        pose='cues = ["Die {side:rechte|linke} Hand, der {other_side:rechte|linke} Fuß, nach {side}."]')
    routine = load_routine_text(text)
    for start, expected in (("rechts", ["Die rechte Hand, der linke Fuß, nach rechts.", "Jetzt die linke Seite.",
                                        "Die linke Hand, der rechte Fuß, nach links."]),
                            ("links", ["Die linke Hand, der rechte Fuß, nach links.", "Jetzt die rechte Seite.",
                                       "Die rechte Hand, der linke Fuß, nach rechts."])):
        said = [t for t in spoken_texts(routine, TimelineOptions(start_side=start)) if "Die " in t or "Jetzt" in t]
        assert said == expected


def test_side_forms_follow_the_poses_own_sides():
    text = routine_text(defaults=GERMAN_SIDES, more_poses=(
        '[[poses]]\nname = "Drei"\nsides = ["vorn", "links", "rechts"]\n'
        'setup = "Die {side:vordere|linke|rechte} Hand."\n'))
    said = [t for t in spoken_texts(load_routine_text(text)) if t.startswith("Die ")]
    assert said == ["Die vordere Hand.", "Die linke Hand.", "Die rechte Hand."]


@pytest.mark.parametrize("cue, message", [
    ("Die {side:rechte} Hand.", "cue has {side:rechte} with 1 form, but it is spoken for 2 sides (rechts, links); "
                                "give one form per side in that order, e.g. {side:rechts|links}"),
    ("Die {other_side:a|b|c} Hand.", "cue has {other_side:a|b|c} with 3 forms, but it is spoken for 2 sides"),
    ("Die {side:rechte|} Hand.", "cue has {side:rechte|} with an empty or braced form; write a word for each side"),
])
def test_wrong_side_forms_are_one_line_at_their_line(tmp_path, cue, message):
    text = routine_text(defaults=GERMAN_SIDES, pose=f'cues = ["{cue}"]')
    found, path = file_error(tmp_path, text)
    assert found.startswith(f'{path}:{line_of(text, cue)}: pose 1 "Leg up": {message}')


def test_a_routine_wide_switch_with_forms_must_fit_every_pose_that_speaks_it(tmp_path):
    text = routine_text(defaults=GERMAN_SIDES, top='side_switch = "Die {side:rechte|linke} Seite."',
                        more_poses='[[poses]]\nname = "Drei"\nsides = ["vorn", "links", "rechts"]\nsetup = "Los."\n')
    found, path = file_error(tmp_path, text)
    assert found == (f'{path}:{line_of(text, "side_switch")}: side_switch has {{side:rechte|linke}} with 2 forms, '
                     'but pose 2 "Drei" is done on 3 sides (vorn, links, rechts); give that pose a side_switch '
                     "of its own")
    fixed = text.replace('setup = "Los."', 'setup = "Los."\nside_switch = "Jetzt {side}."')
    assert load_routine_text(fixed).poses[1].side_switch == ("Jetzt {side}.",)


def test_the_german_routine_puts_inflected_sides_before_nouns():
    said = " ".join(spoken_texts(load_routine("beine-dehnen")))
    assert "die rechte Hand" in said and "die linke Hand" in said and "vom rechten Fuß" in said
    for noun in ("Hand", "Hüfte", "Knie", "Bein", "Fuß", "Seite"):
        assert f"{noun} rechts" not in said and f"{noun} links" not in said, noun


@pytest.mark.parametrize("line, why", [
    ('intro = "Start with the {side} leg."', "intro uses {side}, but the intro is spoken before any side begins"),
    ('outro = "Rest the {other_side} leg."', "outro uses {other_side}, but the outro is spoken after both sides"),
])
def test_side_placeholders_outside_the_sides(tmp_path, line, why):
    text = routine_text(top=line)
    message, path = file_error(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, line)}: {why}")


def test_side_placeholder_in_a_routine_without_sides(tmp_path):
    text = routine_text(defaults="sides = []")
    message, path = file_error(tmp_path, text)
    assert message == (f'{path}:{line_of(text, "setup")}: pose 1 "Leg up": setup uses {{side}}, '
                       "but this routine has no sides (defaults.sides is empty)")


@pytest.mark.parametrize("defaults, pose", [
    ('sides = ["front"]', ""),
    ("", 'sides = ["front"]'),
])
def test_other_side_in_a_pose_done_on_one_side(tmp_path, defaults, pose):
    # With one side, {other_side} would be that side again: "Face the front, not the front."
    line = 'release = "Turn away from the {other_side}."'
    text = routine_text(defaults=defaults, pose=pose + "\n" + line)
    message, path = file_error(tmp_path, text)
    assert message == (f'{path}:{line_of(text, line)}: pose 1 "Leg up": release uses {{other_side}}, but this '
                       "pose is done on one side only (front), so there is no other side; write the words "
                       "instead, or give the pose a second side")
    assert load_routine_text(text.replace("{other_side}", "wall")).poses[0].release == ("Turn away from the wall.",)


@pytest.mark.parametrize("escape, code", [("\\u0007", "U+0007"), ("\\u001b[31m", "U+001B"), ("\\u007f", "U+007F")])
def test_control_characters(tmp_path, escape, code):
    line = f'release = "Lower{escape} it."'
    text = routine_text(pose=line)
    message, path = file_error(tmp_path, text)
    assert message == (f'{path}:{line_of(text, line)}: pose 1 "Leg up": release contains a control character '
                       f"({code}); write plain text (line breaks and tabs are fine)")


def test_a_control_character_in_a_pose_name_does_not_reach_the_terminal(tmp_path):
    text = routine_text().replace('name = "Leg up"', 'name = "Leg\\u001b[2J up"\nhold = 0')
    message, _ = file_error(tmp_path, text)
    assert "\x1b" not in message and "name contains a control character (U+001B)" in message


def test_a_very_long_line(tmp_path):
    long_text = "stretch " * 100
    line = f'cues = ["{long_text}"]'
    text = routine_text(pose=line)
    message, path = file_error(tmp_path, text)
    length = len(long_text.strip())
    assert message == (f'{path}:{line_of(text, line)}: pose 1 "Leg up": cue is {length} characters long; '
                       f"keep it under {MAX_TEXT_CHARS} (split it into several lines)")


def test_a_text_exactly_at_the_limit_loads():
    text = routine_text(top=f'intro = "{"a" * MAX_TEXT_CHARS}"')
    assert len(load_routine_text(text).intro[0]) == MAX_TEXT_CHARS


def test_too_many_lines(tmp_path):
    text = routine_text(pose="release = [" + '"Lower.", ' * 51 + "]")
    message, _ = file_error(tmp_path, text)
    assert 'pose 1 "Leg up": release has 51 items; at most 50' in message


# ---------------------------------------------------------------------------
# Cues and holds

def test_more_cues_than_fit_the_hold(tmp_path):
    cue = "Keep breathing slowly and let the leg grow heavier with every breath out."
    text = routine_text(pose="hold = 10\ncues = [" + f'"{cue}", ' * 3 + "]")
    message, path = file_error(tmp_path, text)
    assert re.fullmatch(
        rf'{re.escape(str(path))}:{line_of(text, "cues")}: pose 1 "Leg up": 3 cues need about \d+ s but the '
        r"10 s hold leaves about 5 s between its chimes; lengthen hold or remove cues", message), message


def test_cues_that_fit_at_normal_speed_may_not_fit_a_slow_routine(tmp_path):
    cue = "Keep breathing slowly and let the leg grow heavier."
    pose = "hold = 20\ncues = [" + f'"{cue}", ' * 3 + "]"
    assert len(load_routine_text(routine_text(pose=pose)).poses[0].cues) == 3
    message, _ = file_error(tmp_path, routine_text(pose=pose, defaults="speed = 0.5"))
    assert "3 cues need about" in message and "20 s hold" in message


def test_one_cue_that_does_not_fit_is_counted_in_the_singular(tmp_path):
    text = routine_text(pose='hold = 2\ncues = ["Keep breathing."]')
    message, _ = file_error(tmp_path, text)
    assert ': 1 cue needs about ' in message and "the 2 s hold" in message


@pytest.mark.parametrize("first, first_at, second, second_at, later", [
    # The same second: one of them was always left out by `coach plan`, after `coach validate` said ok.
    ("Breathe in.", 10, "Breathe out.", 10, 2),
    # Written in any order: the one that starts later is named.
    ("Breathe.", 12, "Reach up through your heel, slowly and gently.", 10, 1),
])
def test_timed_cues_that_overlap_are_rejected(tmp_path, first, first_at, second, second_at, later):
    def text_with(at_1, at_2):
        return routine_text(pose=f'cues = [{{ text = "{first}", at = {at_1} }}, {{ text = "{second}", at = {at_2} }}]')
    text = text_with(first_at, second_at)
    message, path = file_error(tmp_path, text)
    earlier = 3 - later
    at, earlier_at = (first_at, second_at) if later == 1 else (second_at, first_at)
    assert re.fullmatch(
        rf'{re.escape(str(path))}:{line_of(text, "cues")}: pose 1 "Leg up": cue {later} \(at = {at}\) starts '
        rf"while cue {earlier} \(at = {earlier_at}\) is still being said, which takes about \d+ s; move it "
        rf"to at = \d+ or later, or leave out at to have it placed for you", message), message
    moved = int(re.search(r"move it to at = (\d+)", message)[1])
    assert moved > at
    fixed = text_with(moved, second_at) if later == 1 else text_with(first_at, moved)
    assert len(load_routine_text(fixed).poses[0].cues) == 2  # the suggested second is accepted


def test_timed_cues_far_enough_apart_are_fine():
    text = routine_text(pose='cues = [{ text = "Breathe in.", at = 5 }, { text = "Breathe out.", at = 9 }]')
    assert [c.at for c in load_routine_text(text).poses[0].cues] == [5, 9]


@pytest.mark.parametrize("at, expected", [
    ("40", "cue: at must be between 0 and 30 seconds, got 40"),
    ("-1", "cue: at must be between 0 and 30 seconds, got -1"),
    ("30", "cue: at must be a second inside the 30 s hold, from 0 to under 30, got 30"),
    ("nan", "cue: at must be between 0 and 30 seconds, got nan"),
    ('"5"', 'cue: at must be a number of seconds, got text "5" (remove the quotes)'),
])
def test_cue_at_outside_the_hold(tmp_path, at, expected):
    line = f'cues = [{{ text = "Breathe.", at = {at} }}]'
    text = routine_text(pose=line)
    message, path = file_error(tmp_path, text)
    assert message == f'{path}:{line_of(text, line)}: pose 1 "Leg up": {expected}'


def test_cues_as_an_array_of_tables_name_the_right_cue(tmp_path):
    text = routine_text(pose='[[poses.cues]]\ntext = "Breathe."\nat = 5\n[[poses.cues]]\ntext = "Reach."\nat = 99\n')
    message, path = file_error(tmp_path, text)
    assert message.startswith(f'{path}:{line_of(text, "at = 99")}: pose 1 "Leg up": cue 2: at must be between 0 and 30')


# ---------------------------------------------------------------------------
# Chime files

def test_a_chime_is_found_beside_the_routine_file(tmp_path):
    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "gong.wav").write_bytes(b"RIFF")
    path = tmp_path / "mine.toml"
    path.write_text(routine_text(top='[chimes]\nhold_start = "sounds/gong.wav"\n'))
    assert load_routine(path).chimes == {"hold_start": tmp_path / "sounds" / "gong.wav"}


def test_a_missing_chime_file(tmp_path):
    text = routine_text(top='[chimes]\nmidpoint = "bell.wav"\n')
    message, path = file_error(tmp_path, text)
    assert message == (f'{path}:{line_of(text, "bell.wav")}: chimes.midpoint: {tmp_path / "bell.wav"} does not '
                       "exist; give the path of a WAV file, relative to the routine file's folder")


def test_a_chime_that_is_a_folder(tmp_path):
    (tmp_path / "bells").mkdir()
    message, _ = file_error(tmp_path, routine_text(top='[chimes]\nside_switch = "bells"\n'))
    assert f"chimes.side_switch: {tmp_path / 'bells'} is a folder, not a file" in message


def test_an_unreadable_chime_file(tmp_path, monkeypatch):
    bell = tmp_path / "bell.wav"
    bell.write_bytes(b"RIFF")
    # os.access is always True for root, so the check is made to answer as for another user.
    monkeypatch.setattr(routine_validate.os, "access", lambda path, mode: Path(path) != bell)
    text = routine_text(top='[chimes]\nmidpoint = "bell.wav"\n')
    message, path = file_error(tmp_path, text)
    assert message == (f'{path}:{line_of(text, "bell.wav")}: chimes.midpoint: {bell} cannot be read '
                       "(permission denied); check the file's permissions")


@pytest.mark.parametrize("value, expected", [
    ('""', "chimes.midpoint is empty"),
    ("5", "chimes.midpoint must be text in quotes, got a whole number 5"),
    ('"~nosuchuser-coach/bell.wav"', 'chimes.midpoint: cannot find the home folder in "~nosuchuser-coach/bell.wav"'),
    ('"' + "b" * 300 + '.wav"', "has a name too long for the file system"),
    ('"/dev/zero"', "chimes.midpoint: /dev/zero is not a regular file"),
])
def test_bad_chime_paths(tmp_path, value, expected):
    message, _ = file_error(tmp_path, routine_text(top=f"[chimes]\nmidpoint = {value}\n"))
    assert expected in message


# ---------------------------------------------------------------------------
# The error itself

def test_the_error_carries_where_it_happened(tmp_path):
    text = routine_text(pose="hodl = 3")
    path = tmp_path / "mine.toml"
    path.write_text(text)
    err = error_of(lambda: load_routine(path))
    assert (err.path, err.line, err.pose, err.field) == (path, line_of(text, "hodl"), (1, "Leg up"), "hodl")


def test_a_long_pose_name_is_shortened_in_errors(tmp_path):
    text = routine_text(pose="hold = 0").replace("Leg up", "Leg " * 100)
    message, _ = file_error(tmp_path, text)
    assert 'pose 1 "Leg Leg' in message and len(message) < 250


# ---------------------------------------------------------------------------
# The documentation's examples

def toml_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", markdown, flags=re.S | re.M)


def test_the_documented_complete_example_loads(tmp_path):
    blocks = toml_blocks(DOCS.read_text(encoding="utf-8"))
    complete = [b for b in blocks if "[[poses]]" in b and "title =" in b]
    assert complete, "docs/routines.md should hold a complete ```toml example"
    for block in complete:
        path = tmp_path / "example.toml"
        path.write_text(block, encoding="utf-8")
        routine = load_routine(path)
        assert routine.poses and routine.title


def test_every_documented_snippet_is_valid_toml():
    import tomllib

    blocks = toml_blocks(DOCS.read_text(encoding="utf-8"))
    assert len(blocks) >= 2
    for block in blocks:
        tomllib.loads(block)
