"""The command line: thin commands, help everywhere, one-line errors with the right exit codes."""

from __future__ import annotations

import re


import pytest
from typer.testing import CliRunner

from coach import __version__
from coach.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def all_commands():
    group = typer_group()
    names = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            names += [(name, sub) for sub in command.commands]
        else:
            names.append((name,))
    return names


def typer_group():
    import typer.main

    return typer.main.get_command(app)


@pytest.mark.parametrize("path", all_commands(), ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Example: coach" in result.output


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.output.strip() == f"coach {__version__}"


def test_validate_builtin_prints_ok_summary():
    result = run("validate", "leg-stretches")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok ")
    assert "3 poses" in result.output and "right, left" in result.output and "04:30" in result.output


@pytest.mark.parametrize("poses, counted", [
    ('[[poses]]\nname = "Rest"\nrest = true\n', "1 rest,"),  # not "0 poses and 1 rest"
    ('[[poses]]\nname = "A"\n[[poses]]\nname = "Rest"\nrest = true\n', "1 pose and 1 rest,"),
    ('[[poses]]\nname = "A"\n[[poses]]\nname = "B"\n', "2 poses,"),
])
def test_validate_counts_poses_and_rests(tmp_path, poses, counted):
    path = tmp_path / "mine.toml"
    path.write_text('title = "Mine"\n' + poses)
    result = run("validate", str(path))
    assert result.exit_code == 0, result.output
    assert f"'Mine', {counted}" in result.output


def test_validate_bad_file_is_one_line_exit_1(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "x"\n[[poses]]\nname = "A"\nhodl = 5\n')
    result = run("validate", str(bad))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ") and f"{bad}:4" in lines[0] and 'did you mean "hold"' in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("lines, said", [
    ('language = "xx"', "mine.toml: language 'xx': the espeak engine has no voice for this language"),
    ('[defaults]\nvoice = "nosuchvoice"', "mine.toml): unknown voice 'nosuchvoice' for espeak"),
])
def test_validate_finds_a_voice_or_language_that_plan_would_refuse(tmp_path, lines, said):
    path = tmp_path / "mine.toml"
    path.write_text(f'title = "T"\n{lines}\n[[poses]]\nname = "a"\nsetup = "Go."\n')
    for command in ("validate", "plan"):
        result = run(command, str(path))
        assert result.exit_code == 1, (command, result.output)
        assert said in result.output and len(result.output.strip().splitlines()) == 1
    assert run("validate", "beine-dehnen").exit_code == 0  # a language the engine speaks


def test_unknown_routine_suggests_close_names():
    result = run("plan", "leg-stretch")
    assert result.exit_code == 1
    assert "leg-stretches" in result.output and "coach list" in result.output


def test_list_shows_builtin_and_user_folder(isolated_user_dirs):
    mine = isolated_user_dirs / "routines"
    mine.mkdir(parents=True)
    (mine / "evening.toml").write_text('title = "Evening"\n[[poses]]\nname = "Twist"\nhold = 20\n')
    result = run("list")
    assert result.exit_code == 0, result.output
    assert re.search(r"leg-stretches\s+Leg Stretches for Hips and Back", result.output)
    assert re.search(r"evening\s+Evening\s+~\d\d:\d\d\s+1\s+-", result.output)
    assert str(mine) in result.output


def test_plan_shows_all_poses_on_both_sides_with_chimes():
    result = run("plan")
    assert result.exit_code == 0, result.output
    out = result.output
    for pose in ("Leg up", "Leg to the side", "Leg across the body"):
        assert len(re.findall(rf"│ (right|left)\s*│ {pose}\s*│ hold 45 s", out)) == 2, pose
    assert out.count("chime: hold start") == 6 and out.count("chime: midpoint") == 6
    assert out.count("chime: side switch") == 1
    assert "Total length:" in out


def test_plan_speed_changes_total_length():
    def total(speed):
        out = run("plan", "--speed", speed).output
        return float(re.search(r"\(([\d.]+) s\)", out).group(1))

    assert total("0.75") > total("1.0") > total("1.5")


@pytest.mark.parametrize("args, fragment", [
    (("--speed", "3"), "--speed must be between 0.5 and 2"),
    (("--hold", "0"), "--hold must be between 1 and 3600"),
    (("--side", "middle"), "--side must be one of this routine's sides: right, left"),
    (("--engine", "festival"), "engine must be one of espeak, piper"),
])
def test_out_of_range_options_exit_2(args, fragment):
    result = run("plan", *args)
    assert result.exit_code == 2, result.output
    assert fragment in result.output


def test_config_set_show_reset_and_precedence(isolated_user_dirs):
    assert run("config", "set", "speed", "0.8").exit_code == 0
    shown = run("config", "show").output
    assert "speed = 0.8" in shown and str(isolated_user_dirs / "config.toml") in shown
    slow = run("plan").output
    assert "at speed 0.8" in slow
    # a flag wins over the saved setting
    assert "at speed 1.2" in run("plan", "--speed", "1.2").output
    assert run("config", "reset").exit_code == 0
    assert "speed = 1.0" in run("config", "show").output


def test_config_rejects_bad_values():
    result = run("config", "set", "sped", "0.8")
    assert result.exit_code == 1 and 'did you mean "speed"' in result.output
    result = run("config", "set", "speed", "fast")
    assert result.exit_code == 1 and "speed must be a number from 0.5 to 2, got 'fast'" in result.output
    for value in ("inf", "1e400", "nan", "3.5"):
        result = run("config", "set", "countdown", value)
        assert result.exit_code == 1 and "Traceback" not in result.output, value
        assert "countdown must be a whole number of seconds from 0 to 10" in result.output, value
    result = run("config", "set", "countdown", "9" * 26)
    assert result.exit_code == 1 and f"got {'9' * 26}" in result.output  # as given, not as a float
    result = run("config", "set", "volume", "7")
    assert result.exit_code == 1 and "between 0 and 1" in result.output


def test_broken_config_file_names_file_and_fix(isolated_user_dirs):
    isolated_user_dirs.mkdir(parents=True)
    path = isolated_user_dirs / "config.toml"
    path.write_text("speed = = 1\n")
    result = run("plan")
    assert result.exit_code == 1
    assert str(path) in result.output and "coach config reset" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert run("config", "reset").exit_code == 0
    assert run("plan").exit_code == 0


def test_left_out_cues_are_one_summary_line_except_in_plan():
    exported = run("export", "-o", "-", "--hold", "4")
    assert exported.exit_code == 0, exported.output
    warnings = [line for line in exported.output.splitlines() if line.startswith("Warning:")]
    assert warnings == ["Warning: 18 cues or countdowns left out: they do not fit the holds at this length "
                        "and speed; `coach plan` with the same options lists them"]
    planned = run("plan", "--hold", "4")
    assert len([line for line in planned.output.splitlines() if line.startswith("Warning: pose")]) == 18


def test_cache_show_and_clear(tmp_path, monkeypatch):
    import numpy as np

    from coach.speech import SpeechCache

    folder = tmp_path / "speech"
    monkeypatch.setenv("COACH_CACHE_DIR", str(folder))
    result = run("cache", "show")
    assert result.exit_code == 0 and result.output == f"# {folder}\n0 clips, 0.0 MB\n"
    cache = SpeechCache(folder)
    for key in ("a", "b", "c"):
        cache.put(key, np.zeros(500_000, dtype=np.int16))  # 1 MB each, plus a header
    (folder / ".tmp-left-by-a-killed-run.clip").write_bytes(b"x" * 1000)
    (folder / "notes.txt").write_text("not ours")  # COACH_CACHE_DIR may point at a shared folder
    result = run("cache", "show")
    assert result.exit_code == 0 and result.output.splitlines()[1] == "4 clips, 3.0 MB"
    result = run("cache", "clear")
    assert result.exit_code == 0 and result.output == f"Removed 4 clips (3.0 MB) from {folder}.\n"
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert run("cache", "show").output.splitlines()[1] == "0 clips, 0.0 MB"


def test_cache_that_cannot_be_read_is_one_line(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("COACH_CACHE_DIR", str(blocker))
    for command in ("clear", "show"):
        result = run("cache", command)
        assert result.exit_code == 1
        assert result.output.startswith("Error: cannot read the speech cache") and result.output.count("\n") == 1
        # what is wrong and how to fix it, not only "Not a directory"
        assert result.output.endswith(f"{blocker} is a file, not a folder; point COACH_CACHE_DIR at a folder\n")


def test_plan_shows_a_routine_s_words_as_written_even_when_they_look_like_markup(tmp_path):
    # rich reads "[/]" as closing a style and "[[x]]" as an escaped "[x]": neither is for us.
    routine = tmp_path / "brackets.toml"
    routine.write_text('title = "[/x] Brackets [b]"\n[[poses]]\nname = "Lift [/]"\nhold = 10\n'
                       'setup = ["Lift [/] your leg [/bold] and [[x]] hold."]\n', encoding="utf-8")
    result = run("plan", str(routine))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for literal in ("[/x] Brackets [b]", "Lift [/]", "Lift [/] your leg [/bold] and [[x]] hold."):
        assert literal in result.output, literal


def test_the_live_panel_shows_a_title_that_looks_like_markup_as_written():
    import io

    from rich.console import Console

    from coach.display import LiveDisplay
    from coach.player import Status
    from coach.timeline import Timeline

    console = Console(width=100, file=io.StringIO(), force_terminal=False)
    display = LiveDisplay(Timeline((), (), 22050), "[/x] Brackets [b]", console)
    console.print(display.render(Status(0.0, False, None)))
    assert "[/x] Brackets [b]" in console.file.getvalue()


def test_a_routine_file_whose_name_is_not_utf8_is_listed_and_validated_as_the_bytes_it_is(tmp_path):
    import os
    import subprocess
    import sys

    folder = os.fsencode(tmp_path)
    name = b"caf\xe9-legs.toml"  # Latin-1: not UTF-8
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(open("tests/data/short.toml", "rb").read())
    env = dict(os.environ, COACH_CONFIG_DIR=str(tmp_path / "config"))
    done = subprocess.run([sys.executable, "-m", "coach", "validate", os.path.join(folder, name)],
                          capture_output=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"ok ") and name in done.stdout and done.stderr == b""


@pytest.mark.parametrize("args, says", [
    (["plan", "--speed", "fast"], "Error: Invalid value for '--speed' / '-s': 'fast' is not a valid float."),
    (["plan", "--spede", "1"], "Error: No such option: --spede"),
    (["config", "set", "speed"], "Error: Missing argument 'value'."),
    (["frob"], "Error: No such command 'frob'."),
    (["export"], "Error: Missing option '--output' / '-o'."),
])
def test_a_mistake_on_the_command_line_is_one_line_with_where_the_usage_is(args, says):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "coach", *args], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(says) and "--help`)" in lines[0], done.stderr


def test_an_unknown_voice_with_no_sound_device_is_the_one_line_said(monkeypatch, isolated_user_dirs):
    # The missing device is warned about once the session sounds: an error before that is
    # the line to read, not the second of two.
    from coach import live
    from coach.errors import AudioOutputError

    def no_device(*args, **kwargs):
        raise AudioOutputError("no audio output: no sound card. Use `coach export -o session.wav` to play it elsewhere.")

    monkeypatch.setattr(live, "open_sink", no_device)
    result = run("start", "tests/data/short.toml", "--voice", "nosuch", "--quiet")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: --voice: unknown voice 'nosuch'"), result.output
    assert "Warning" not in result.output


def test_a_format_that_disagrees_with_the_suffix_is_written_with_one_warning(tmp_path):
    target = tmp_path / "talk.mp3"
    result = run("export", "tests/data/short.toml", "-o", str(target), "--format", "txt")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Warning: talk.mp3 will hold txt (--format), not the mp3 its suffix says")
    assert result.stderr.count("Warning") == 1 and "Length" in target.read_text(encoding="utf-8")
    result = run("export", "tests/data/short.toml", "-o", str(tmp_path / "talk.text"), "--format", "txt")
    assert result.exit_code == 0 and "Warning" not in result.stderr  # an alias of the same format


def test_config_set_takes_a_negative_value_as_the_value():
    result = run("config", "set", "countdown", "-1")
    assert result.exit_code == 1 and "countdown must be between 0 and 10 seconds, got -1" in result.output
    result = run("config", "set", "volume", "-0")
    assert result.exit_code == 0 and "volume = 0.0" in result.output


def test_an_unknown_voice_says_where_its_name_came_from(tmp_path, isolated_user_dirs):
    short = open("tests/data/short.toml", encoding="utf-8").read()
    routine = tmp_path / "voiced.toml"
    routine.write_text(short.replace("[defaults]\n", '[defaults]\nvoice = "nosuchvoice"\n', 1), encoding="utf-8")
    result = run("plan", str(routine))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: the routine's voice ([defaults] voice in {routine}): "
                                    "unknown voice 'nosuchvoice' for espeak"), result.output
    result = run("export", "tests/data/short.toml", "-o", str(tmp_path / "s.srt"), "--voice", "nosuch")
    assert result.exit_code == 2 and result.output.startswith("Error: --voice: unknown voice 'nosuch'")
    isolated_user_dirs.mkdir(parents=True, exist_ok=True)
    (isolated_user_dirs / "config.toml").write_text('voice = "zzz"\n')
    result = run("plan", "tests/data/short.toml")
    assert result.exit_code == 1 and result.output.startswith("Error: your saved voice (in ")
    assert "coach config set voice NAME" in result.output
    # Suggestions look like the name, or are English voices: not whatever shares a few letters.
    assert "Indonesian" not in result.output and "English" in result.output


def test_config_set_voice_refuses_a_voice_the_engine_does_not_have(isolated_user_dirs):
    result = run("config", "set", "voice", "nosuchvoice")
    assert result.exit_code == 1 and "unknown voice 'nosuchvoice' for espeak" in result.output
    assert not (isolated_user_dirs / "config.toml").exists()
    assert run("config", "set", "voice", "en-gb").exit_code == 0


def test_show_of_a_file_names_it_as_given_in_the_plan_command_it_suggests(tmp_path, monkeypatch, isolated_user_dirs):
    # A file outside the routine folder is not found by its bare name: `coach plan evening`
    # would say there is no such routine.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evening.toml").write_text('title = "Evening"\n[[poses]]\nname = "Leg up"\n', encoding="utf-8")
    shown = run("show", "evening.toml")
    assert shown.exit_code == 0, shown.output
    assert "`coach plan evening.toml` gives the exact length" in shown.output
    assert run("plan", "evening.toml").exit_code == 0
    assert "`coach plan wind-down` gives" in run("show", "wind-down").output


def test_no_color_takes_the_colour_off_error_lines(tmp_path, monkeypatch, isolated_user_dirs):
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "T"\n[[poses]]\nname = "a"\nhodl = 3\n', encoding="utf-8")
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = runner.invoke(app, ["validate", str(bad)], color=True)
    assert coloured.exit_code == 1 and "\x1b[" in coloured.output  # red on a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    plain = runner.invoke(app, ["validate", str(bad)], color=True)
    assert plain.exit_code == 1 and "\x1b" not in plain.output and 'unknown key "hodl"' in plain.output
