"""The built-in library and the routine commands: every routine validates, plans and exports;
`coach list`, `show`, `new`; --minutes and --guidance through the command line with real
speech; a routine's language picks its voice; shell completion."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from coach.cli import app, complete_routine
from coach.errors import SpeechError
from coach.routine import available_routines, builtin_cues_dir, load_routine
from coach.session import resolve_options
from coach.settings import Settings

runner = CliRunner()
BUILTIN = sorted(p.stem for p in builtin_cues_dir().glob("*.toml"))
SAFETY_WORDS = {"en": ("pain", "hurt"), "de": ("Schmerz",)}


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_the_library_has_at_least_six_routines_one_in_another_language():
    assert len(BUILTIN) >= 6
    assert any(load_routine(name).language not in (None, "en") for name in BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_each_builtin_validates_plans_and_exports(name, tmp_path):
    result = run("validate", name)
    assert result.exit_code == 0 and result.output.startswith("ok "), result.output
    planned = run("plan", name)
    assert planned.exit_code == 0, planned.output
    assert "Warning" not in planned.output  # every cue fits at the default speed
    total = re.search(r"Total length: (\d\d):(\d\d)", planned.output)
    minutes = int(total[1]) + int(total[2]) / 60
    assert 5 <= minutes <= 25, f"{name} lasts {minutes:.1f} min"
    out = tmp_path / f"{name}.json"
    exported = run("export", name, "-o", out)
    assert exported.exit_code == 0, exported.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["events"] and data["sections"]


@pytest.mark.parametrize("name", BUILTIN)
def test_each_builtin_is_credited_safe_and_speaks_every_transition(name):
    routine = load_routine(name)
    assert routine.credit and routine.description and routine.props
    words = SAFETY_WORDS[routine.language or "en"]
    assert any(w in " ".join(routine.intro) for w in words), "the intro says to stop at pain"
    for pose in routine.poses:
        assert pose.setup, f"{pose.name}: how to get into it is spoken"
        last = pose is routine.poses[-1]
        assert pose.release or (last and pose.rest and not pose.chimes), f"{pose.name}: how to come out is spoken"
        if routine.sides_of(pose):
            assert routine.switch_lines_of(pose), f"{pose.name}: the side switch is spoken"
        assert any(c.detail for c in pose.cues) or len(pose.cues) <= 1 or pose.rest, \
            f"{pose.name}: some cues are marked detail, for --guidance brief"
    assert routine.settle >= 3 or all(p.settle for p in routine.poses)


def test_the_german_routine_speaks_with_a_german_voice():
    routine = load_routine("beine-dehnen")
    assert routine.language == "de"
    voice = resolve_options(routine, Settings()).voice
    assert voice and "de" in voice.rsplit("/", 1)[-1]
    # a saved English voice does not win over the routine's language; --voice does
    assert resolve_options(routine, Settings(voice="gmw/en-us")).voice == voice
    assert resolve_options(routine, Settings(), voice="gmw/en-us").voice == "gmw/en-us"


def test_a_language_without_a_voice_is_one_error_naming_the_languages(tmp_path):
    path = tmp_path / "klingon.toml"
    path.write_text('title = "T"\nlanguage = "tlh"\n[[poses]]\nname = "A"\n', encoding="utf-8")
    with pytest.raises(SpeechError) as caught:
        resolve_options(load_routine(path), Settings())
    message = str(caught.value)
    assert message.startswith(f"{path}: language 'tlh': the espeak engine has no voice for this language")
    assert re.search(r"voices for .*\bde\b.*\ben\b.*\bfr\b", message)
    result = run("plan", path)
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("minutes, speed", [(7, 1.0), (9.5, 0.8), (12, 1.3)])
def test_minutes_through_plan_with_real_speech(minutes, speed):
    result = run("plan", "lower-back", "--minutes", minutes, "--speed", speed)
    assert result.exit_code == 0, result.output
    seconds = float(re.search(r"Total length: \d\d:\d\d \(([\d.]+) s\)", result.output)[1])
    assert abs(seconds - minutes * 60) <= 5
    chosen = re.search(r"Holds chosen for [\d.]+ minutes: (.*)", result.output)[1]
    assert "Knees to chest" in chosen and "Rest" in chosen


def test_minutes_through_export_with_real_speech(tmp_path):
    out = tmp_path / "s.json"
    assert run("export", "desk-break", "--minutes", 8, "--guidance", "brief", "-o", out).exit_code == 0
    assert abs(json.loads(out.read_text())["length_seconds"] - 480) <= 5


def test_an_unreachable_length_is_one_line_with_the_range():
    result = run("plan", "quick-legs", "--minutes", 40)
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and line.startswith("Error: --minutes 40: at speed 1 quick-legs lasts from ")
    assert "choose --minutes from" in line


def test_guidance_levels_through_plan():
    said = {}
    for level in ("full", "brief", "minimal"):
        result = run("plan", "lower-back", "--guidance", level)
        assert result.exit_code == 0, result.output
        said[level] = result.output
    assert "Let your lower back spread" in said["full"] and "Let your lower back spread" not in said["brief"]
    assert "Lying twist, right." in said["minimal"] and "Welcome" not in said["minimal"]
    assert run("plan", "--guidance", "loud").exit_code == 2


def test_the_saved_guidance_is_used(isolated_user_dirs):
    assert run("config", "set", "guidance", "minimal").exit_code == 0
    assert "Welcome" not in run("plan", "lower-back").output
    assert "Welcome" in run("plan", "lower-back", "--guidance", "full").output


def test_list_shows_title_estimated_length_poses_and_props():
    result = run("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "TITLE", "LENGTH*", "POSES", "PROPS"]
    for name in BUILTIN:
        row = next(line for line in lines if line.startswith(name + " "))
        routine = load_routine(name)
        assert routine.title in row and ", ".join(routine.props) in row
        assert re.search(r"~\d\d:\d\d\s+\d+\s", row)
    assert any("an estimate" in line for line in lines)


def test_show_prints_description_credit_props_and_each_pose_with_its_hold():
    result = run("show", "lower-back")
    assert result.exit_code == 0, result.output
    routine = load_routine("lower-back")
    assert routine.description in result.output and routine.credit in result.output
    assert re.search(r"2\s+Lying twist\s+right, left\s+40 s each side", result.output)
    assert re.search(r"4\s+Rest\s+once\s+90 s\s+rest", result.output)
    assert run("show", "no-such-routine").exit_code == 1


def test_new_writes_a_starter_that_validates_and_never_overwrites(isolated_user_dirs):
    result = run("new", "evening-hips")
    assert result.exit_code == 0, result.output
    path = isolated_user_dirs / "routines" / "evening-hips.toml"
    assert result.stdout.strip() == str(path) and path.is_file()
    assert "#" in path.read_text()  # commented
    assert run("validate", "evening-hips").exit_code == 0
    assert "evening-hips" in available_routines()
    path.write_text("mine")
    again = run("new", "evening-hips")
    assert again.exit_code == 1 and "already exists" in again.output and "--force" in again.output
    assert path.read_text() == "mine"
    assert run("new", "evening-hips", "--force").exit_code == 0 and path.read_text() != "mine"
    bad = run("new", "../escape")
    assert bad.exit_code == 1 and "not a usable routine name" in bad.output
    assert "built-in" not in result.stderr


def test_new_with_a_built_in_routine_s_name_says_that_it_now_plays_instead(isolated_user_dirs):
    from coach.routine.library import builtin_cues_dir

    result = run("new", "quick-legs")
    assert result.exit_code == 0
    mine = isolated_user_dirs / "routines" / "quick-legs.toml"
    assert available_routines()["quick-legs"] == mine
    assert "`coach start quick-legs` now plays yours" in result.stderr
    assert str(builtin_cues_dir() / "quick-legs.toml") in result.stderr


def test_new_where_a_folder_has_the_routine_s_file_name(isolated_user_dirs):
    (isolated_user_dirs / "routines" / "dd.toml").mkdir(parents=True)
    result = run("new", "dd")
    assert result.exit_code == 1 and "dd.toml is a folder; remove or rename it" in result.output
    assert "session.wav" not in result.output


def test_completion_of_routine_names_and_the_completion_script():
    assert complete_routine("lo") == ["lower-back"]
    assert set(complete_routine("")) >= set(BUILTIN)
    result = run("--show-completion", "bash")
    assert result.exit_code == 0 and "_COACH_COMPLETE" in result.output


def test_rests_sound_in_the_wav_as_the_timeline_says(tmp_path):
    """wind-down: the breathing rest rings its own chimes; the last rest is silent but for its cues."""
    import wave

    import numpy as np

    from coach.audio import SAMPLE_RATE, peak_db

    wav, timeline = tmp_path / "s.wav", tmp_path / "s.json"
    for out in (wav, timeline):
        assert run("export", "wind-down", "--minutes", 7, "-o", out).exit_code == 0
    with wave.open(str(wav), "rb") as handle:
        audio = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2") / 32768
    doc = json.loads(timeline.read_text())
    assert len(audio) == doc["length_samples"]
    sections = {s["pose"]: s for s in doc["sections"]}
    events = doc["events"]

    def peak(start, seconds):
        return peak_db(audio[start:start + int(seconds * SAMPLE_RATE)])

    breathing = sections["Slow breathing"]
    start, end = breathing["hold_start_sample"], breathing["hold_start_sample"] + breathing["hold_length_samples"]
    assert [e["part"] for e in events if e["kind"] == "chime" and e["section"] == breathing["index"]] == \
        ["rest_start", "rest_end"]
    assert peak(start, 0.3) > -30 and peak(end, 0.3) > -30  # a chime at each end
    assert peak(start - int(0.5 * SAMPLE_RATE), 0.45) < -50  # the settle time before it is quiet

    quiet = sections["Quiet rest"]
    start = quiet["hold_start_sample"]
    spoken = [(e["start_sample"], e["start_sample"] + e["length_samples"]) for e in events
              if e["section"] == quiet["index"] and e["kind"] == "speech" and e["part"] == "cue"]
    assert spoken and spoken[0][0] > start + SAMPLE_RATE
    assert peak(start, (spoken[0][0] - start) / SAMPLE_RATE - 0.05) < -50  # no chime as it begins
    assert peak(spoken[-1][1] + 100, 0.5) < -50 and doc["events"][-1]["part"] in ("rest", "cue")
