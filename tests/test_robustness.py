"""Issue 5 end to end: every bad input, fault and interruption gets one clear line, the right
exit code, no traceback, and loses nothing.

These tests go through the real command line: typer's CliRunner where only the message and
exit code matter, a subprocess (`python -m coach`) where signals, pipes or two processes at
once do. Each checks the message (what, where, how to fix), the exit code, that there is no
traceback, and that nothing was lost: no output or temporary file left behind, an existing
file unchanged. The library-level tests that go deeper into a case are named in
docs/reliability.md beside each case.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import FullDisk
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from coach.audio import SAMPLE_RATE
from coach.chimes import MAX_CHIME_SECONDS
from coach.cli import app
from coach.routine import MAX_FILE_BYTES, MAX_POSES, Cue, Pose, Routine
from coach.speech import SpeechCache
from coach.speech.espeak import DEFAULT_VOICE_MEMO
from coach.timeline import TimelineOptions, build_timeline, samples, spoken_texts

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
try:  # the bench and these tests export the same long routine
    from bench_signals import long_routine_text, signal_one_export
finally:
    sys.path.remove(str(REPO / "bench"))
SHORT = REPO / "tests" / "data" / "short.toml"
# A stop must be prompt, not the rest of the job (which takes many seconds here). How prompt is a
# figure, measured by bench/bench_signals.py (about 0.1 s on an idle machine); on a 2-core machine
# shared with busy loops and other test runs the same stop took 0.5-3.6 s (the exit itself waits
# for the CPU), so the bound only catches a stop that never comes. The tests that need "at once"
# count the work done after the signal instead.
STOP_WITHIN_S = 8.0
runner = CliRunner()


# ---------------------------------------------------------------------------
# Helpers

def cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, code: int, *fragments: str) -> str:
    """The command failed with `code`, printing exactly one `Error: ...` line and no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def listing(folder: Path) -> list[str]:
    """Every name in a folder, hidden ones (temporary .part files) too."""
    return sorted(p.name for p in folder.iterdir())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# The `coach` script installed beside this Python, as people run it; else `python -m coach`.
COACH = [str(Path(sys.executable).with_name("coach"))] if Path(sys.executable).with_name("coach").exists() \
    else [sys.executable, "-m", "coach"]


def coach_command(*args, cache: Path, config: Path) -> tuple[list[str], dict]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update(COACH_CACHE_DIR=str(cache), COACH_CONFIG_DIR=str(config), COLUMNS="200")
    return [*COACH, *map(str, args)], env


def run_coach(*args, cache: Path, config: Path, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    command, env = coach_command(*args, cache=cache, config=config)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO, **kwargs)


def processes_with(token: str) -> list[int]:
    """Live processes whose environment mentions `token` (a unique folder of this test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = next((ln for ln in (entry / "status").read_text().splitlines() if ln.startswith("State:")), "")
        except OSError:
            continue
        if token.encode() in environ and "Z" not in state.split()[1:2]:
            found.append(int(entry.name))
    return found


@pytest.fixture
def dirs(tmp_path):
    """A fresh speech cache, settings folder and output folder for one subprocess test."""
    made = {name: tmp_path / name for name in ("cache", "config", "out")}
    made["out"].mkdir()
    return made


@pytest.fixture(scope="module")
def long_routine(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("routines") / "long.toml"
    path.write_text(long_routine_text())
    return path


@pytest.fixture(scope="module")
def warm_long_cache(tmp_path_factory, long_routine) -> Path:
    """A speech cache already holding every clip of the long routine."""
    cache = tmp_path_factory.mktemp("warm-cache")
    config = tmp_path_factory.mktemp("warm-config")
    out = tmp_path_factory.mktemp("warm-out")
    result = run_coach("export", long_routine, "-o", out / "warm.txt", cache=cache, config=config)
    assert result.returncode == 0, result.stderr
    return cache


# ---------------------------------------------------------------------------
# Routine files, through `coach validate` (test_routine.py checks each message in detail)

def _cases_of_bad_routines():
    pose = '[[poses]]\nname = "Leg up"\n'
    top = 'title = "Mine"\n'
    return {
        # name: (file content, fragments the one line must hold)
        "malformed-toml": (top + pose + "hold = = 3\n", [":4:", "not valid TOML", "check the quotes"]),
        "unknown-key": (top + pose + "hodl = 3\n", [":4:", 'pose 1 "Leg up"', 'did you mean "hold"']),
        "wrong-type": (top + pose + 'hold = "long"\n', [":4:", "hold must be", 'text "long"']),
        "hold-zero": (top + pose + "hold = 0\n", [":4:", "hold must be between 1 and 3600 seconds, got 0"]),
        "hold-negative": (top + pose + "hold = -5\n", [":4:", "hold must be between 1 and 3600 seconds, got -5"]),
        "hold-absurd": (top + pose + "hold = 1e9\n", [":4:", "hold must be between 1 and 3600 seconds, got 1e+09"]),
        "pose-without-name": (top + '[[poses]]\nhold = 20\n', [":2:", "pose 1: has no name", 'add a line like name =']),
        "empty-text": (top + pose + 'setup = ""\n', [":4:", 'pose 1 "Leg up": setup is empty', "remove the line"]),
        "no-poses": (top, ["has no poses", "[[poses]]"]),
        "empty-file": ("", ["title"]),
        "not-utf8": (top.encode() + b'intro = "caf\xe9"\n' + pose.encode(), [":2:", "not UTF-8", "save the file as UTF-8"]),
        "utf16": (("\ufeff" + top + pose).encode("utf-16-le"), ["UTF-16", "save it as UTF-8"]),
        "over-1-MiB": (top + pose + "# padding\n" * (MAX_FILE_BYTES // 10), ["over 1 MiB", "at most 1 MiB"]),
        "deeply-nested": ("a = " + "[" * 5000 + "]" * 5000 + "\n", ["nested too deeply"]),
        "too-many-poses": (top + '[[poses]]\nname = "A"\nhold = 1\n' * (MAX_POSES + 1),
                           [f"{MAX_POSES + 1} poses", f"at most {MAX_POSES}"]),
        "over-4-hours": (top + "[defaults]\nhold = 3600\n" + pose * 3, ["6.0 hours", "at most 4 hours", "shorten holds"]),
        "control-character": (top + pose + 'release = "Lower\\u001b[2J it."\n',
                              [":4:", "control character (U+001B)", "write plain text"]),
        "very-long-line": (top + pose + 'cues = ["' + "stretch " * 100 + '"]\n',
                           [":4:", "characters long", "split it into several lines"]),
        "huge-number": (top + pose + "hold = " + "9" * 5000 + "\n", [":4:", "thousands of digits"]),
        "unknown-placeholder": (top + pose + 'setup = "Lift the {sid} leg."\n', [":4:", "{sid}"]),
        "cues-do-not-fit": (top + pose + "hold = 5\ncues = [" + '"Keep breathing slowly and let the leg grow '
                            'heavier with every breath out.", ' * 4 + "]\n", ['pose 1 "Leg up"', "cue"]),
    }


BAD_ROUTINES = _cases_of_bad_routines()


@pytest.mark.parametrize("case", list(BAD_ROUTINES))
def test_a_bad_routine_file_is_one_line_exit_1(tmp_path, case):
    content, fragments = BAD_ROUTINES[case]
    path = tmp_path / "mine.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    before = digest(path)
    line = assert_one_line_error(cli("validate", path), 1, str(path), *fragments)
    assert "\x1b" not in line  # a control character in the file never reaches the terminal
    assert digest(path) == before and listing(tmp_path) == ["mine.toml"]


def test_a_missing_routine_file_suggests_one_beside_it(tmp_path):
    (tmp_path / "evening.toml").write_text('title = "Evening"\n[[poses]]\nname = "Twist"\n')
    missing = tmp_path / "evenning.toml"
    assert_one_line_error(cli("validate", missing), 1, f"{missing}: no such file", 'did you mean "evening.toml"',
                          "coach list")


def _special_file(folder: Path, kind: str) -> Path:
    """A path that is not a regular file: a pipe nobody writes to, a listening socket, a device."""
    path = folder / "mine.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        import socket

        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))  # stays bound until the test process ends: only its name matters
        _special_file.sockets.append(server)
    elif kind == "endless-device":
        path.symlink_to("/dev/zero")
    else:
        raise ValueError(kind)
    return path


_special_file.sockets = []
SPECIAL = [("fifo", "a named pipe (FIFO)"), ("socket", "a socket"), ("endless-device", "a character device")]


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="POSIX file kinds")
@pytest.mark.parametrize("kind, what", SPECIAL, ids=[k for k, _ in SPECIAL])
def test_a_routine_path_that_is_not_a_regular_file_is_one_line_and_never_hangs(dirs, tmp_path, kind, what):
    path = _special_file(tmp_path, kind)
    result = run_coach("validate", path, cache=dirs["cache"], config=dirs["config"], timeout=60)  # a hang fails here
    assert result.returncode == 1
    assert result.stderr == f"Error: {path}: is not a regular file but {what}; give the path of a routine file (.toml)\n"


def test_texts_in_other_scripts_are_spoken(tmp_path):
    """Accents, CJK, Greek, Cyrillic: espeak-ng speaks each (a silent clip would be an error)."""
    path = tmp_path / "world.toml"
    path.write_text('title = "Étirements 伸展"\n'
                    'intro = ["Détendez-vous, façade naïve, über.", "请慢慢呼吸。放松你的肩膀。", "ゆっくり息を吐いて",'
                    ' "Ελληνικά κείμενο", "Дышите медленно."]\n[[poses]]\nname = "Jambe 腿"\nhold = 5\n',
                    encoding="utf-8")
    out = tmp_path / "world.json"
    result = cli("export", path, "-o", out)
    assert result.exit_code == 0, result.output
    import json

    events = json.loads(out.read_text(encoding="utf-8"))["events"]
    intro = [e for e in events if e["kind"] == "speech" and e["part"] == "intro"]
    assert [e["text"] for e in intro][1] == "请慢慢呼吸。放松你的肩膀。"
    assert all(e["duration"] > 0.3 for e in intro), intro


# ---------------------------------------------------------------------------
# Routine names and paths

def test_an_unknown_name_suggests_close_names():
    assert_one_line_error(cli("validate", "leg-strech"), 1, 'no routine named "leg-strech"',
                          'did you mean "leg-stretches"', "coach list")


def test_a_folder_is_not_a_routine(tmp_path):
    assert_one_line_error(cli("plan", tmp_path), 1, f"{tmp_path}: is a folder", "name a .toml file inside it")


def test_a_symlink_loop(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.symlink_to(b)
    b.symlink_to(a)
    assert_one_line_error(cli("validate", a), 1, f"{a}: is a symbolic link loop", "fix or remove the link")


def test_a_routine_without_read_permission(tmp_path, monkeypatch):
    path = tmp_path / "secret.toml"
    path.write_text('title = "T"\n[[poses]]\nname = "A"\n')
    if os.geteuid() == 0:  # root reads any file: make the open fail as it does for anyone else
        import coach.routine.load as routine_load

        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(routine_load, "open", denied, raising=False)
    else:
        path.chmod(0)
    assert_one_line_error(cli("validate", path), 1, f"{path}: cannot be read: permission denied",
                          "check the file's permissions")


# ---------------------------------------------------------------------------
# Chime files named by a routine, through `coach validate`

def _riff(tag: int, channels: int, rate: int, bits: int, pcm: bytes) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _bell(rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * 660 * t) * np.exp(-4 * t)


def _make_chime(path: Path, kind: str) -> None:
    if kind == "8-bit":
        path.write_bytes(_riff(1, 1, 22050, 8, (_bell(22050) * 127 + 128).astype(np.uint8).tobytes()))
    elif kind == "stereo":
        both = np.repeat(_bell(22050)[:, None], 2, axis=1)
        path.write_bytes(_riff(1, 2, 22050, 16, (both * 32767).astype("<i2").tobytes()))
    elif kind == "96-kHz":
        path.write_bytes(_riff(1, 1, 96000, 16, (_bell(96000) * 32767).astype("<i2").tobytes()))
    elif kind == "compressed":
        path.write_bytes(_riff(3, 1, 22050, 32, _bell(22050).astype("<f4").tobytes()))
    elif kind == "mp3-renamed":
        path.write_bytes(b"ID3\x03\x00" + bytes(range(256)) * 8)
    elif kind == "not-a-wav":
        path.write_text("hello, this is text\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "enormous":
        with open(path, "wb") as handle:
            handle.truncate(200 * 2**20)  # sparse: 200 MB that cost nothing to write
    elif kind == "too-long":
        path.write_bytes(_riff(1, 1, 22050, 16, (np.tile(_bell(22050), 30) * 32767).astype("<i2").tobytes()))
    elif kind != "missing":
        raise ValueError(kind)


def _chime_routine(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    chime = tmp_path / "bell.wav"
    _make_chime(chime, kind)
    routine = tmp_path / "mine.toml"
    routine.write_text('title = "Mine"\n[chimes]\nmidpoint = "bell.wav"\n[[poses]]\nname = "Leg up"\nhold = 10\n')
    return routine, chime


@pytest.mark.parametrize("kind", ["8-bit", "stereo", "96-kHz"])
def test_chimes_in_other_pcm_layouts_are_converted(tmp_path, kind):
    routine, chime = _chime_routine(tmp_path, kind)
    before = digest(chime)
    result = cli("validate", routine)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok  {routine}")
    assert digest(chime) == before  # converted in memory, the user's file is left alone


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="POSIX file kinds")
@pytest.mark.parametrize("kind, what", SPECIAL, ids=[k for k, _ in SPECIAL])
def test_a_chime_that_is_not_a_regular_file_is_one_line_and_never_hangs(dirs, tmp_path, kind, what):
    chime = _special_file(tmp_path, kind).rename(tmp_path / "bell.wav")
    routine = tmp_path / "mine.toml"
    routine.write_text('title = "Mine"\n[chimes]\nmidpoint = "bell.wav"\n[[poses]]\nname = "Leg up"\nhold = 10\n')
    result = run_coach("validate", routine, cache=dirs["cache"], config=dirs["config"], timeout=30)
    assert result.returncode == 1
    assert result.stderr == (f"Error: {routine}:3: chimes.midpoint: {chime} is not a regular file but {what}; "
                             "give the path of a WAV file, relative to the routine file's folder\n")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX file kinds")
def test_reading_a_pipe_as_a_wav_fails_at_once(tmp_path):
    """The library's read_wav too: a pipe nobody writes to is refused, not waited on."""
    from coach.audio import read_wav
    from coach.errors import ChimeError

    os.mkfifo(tmp_path / "bell.wav")
    with pytest.raises(ChimeError, match="bell.wav is not a regular file .a pipe, socket or device.; give the path"):
        read_wav(tmp_path / "bell.wav")


@pytest.mark.parametrize("kind, fragments", [
    ("missing", [":3:", "chimes.midpoint", "does not exist", "relative to the routine file's folder"]),
    ("compressed", [":3:", "chimes.midpoint", "compressed/non-PCM WAV (32-bit float)", "convert it with `sox"]),
    ("mp3-renamed", [":3:", "chimes.midpoint", "it looks like an MP3", "sox -t mp3"]),
    ("not-a-wav", [":3:", "chimes.midpoint", "is not a WAV file", "give a PCM .wav file"]),
    ("empty", [":3:", "chimes.midpoint", "empty file (0 bytes)", "export or record the sound again"]),
    ("enormous", [":3:", "chimes.midpoint", "200.0 MB, over the 20 MB limit", "use a short clip"]),
    ("too-long", [":3:", "chimes.midpoint", "15.0 s long", "trim it"]),
])
def test_unusable_chimes_are_one_line_naming_routine_and_file(tmp_path, kind, fragments):
    """Also the line that names the chime, when what is wrong is only found in its sound."""
    routine, chime = _chime_routine(tmp_path, kind)
    assert_one_line_error(cli("validate", routine), 1, f"{routine}", "bell.wav", *fragments)
    # the same line stops `coach export` before any file is made
    assert_one_line_error(cli("export", routine, "-o", tmp_path / "s.txt"), 1, "chimes.midpoint")
    assert "s.txt" not in listing(tmp_path)


def test_an_unreadable_chime_is_named(tmp_path, monkeypatch):
    routine, chime = _chime_routine(tmp_path, "8-bit")
    if os.geteuid() == 0:  # root reads any file: answer as the file's permissions would for a user
        import coach.routine.validate as routine_validate

        real_access = os.access
        monkeypatch.setattr(routine_validate.os, "access",
                            lambda path, mode: False if Path(path) == chime else real_access(path, mode))
    chime.chmod(0)
    assert_one_line_error(cli("validate", routine), 1, f"{routine}:3: chimes.midpoint: {chime} cannot be read",
                          "check the file's permissions")


# ---------------------------------------------------------------------------
# Command line

@pytest.mark.parametrize("command", ["plan", "export", "start"])
@pytest.mark.parametrize("option, value, fragment", [
    ("--speed", "3", "--speed must be between 0.5 and 2, got 3"),
    ("--speed", "0.1", "--speed must be between 0.5 and 2, got 0.1"),
    ("--hold", "0", "--hold must be between 1 and 3600 seconds, got 0"),
    ("--hold", "99999", "--hold must be between 1 and 3600 seconds, got 99999"),
    ("--volume", "1.5", "--volume must be between 0 and 1, got 1.5"),
    ("--volume", "-1", "--volume must be between 0 and 1, got -1"),
])
def test_out_of_range_options_exit_2_before_any_work(tmp_path, monkeypatch, command, option, value, fragment):
    if option == "--volume" and command == "plan":
        pytest.skip("plan has no --volume")
    import coach.session as session_module

    def no_synthesis(*args, **kwargs):
        raise AssertionError("speech was synthesized before the options were checked")

    monkeypatch.setattr(session_module, "synthesize_clips", no_synthesis)
    extra = ["-o", tmp_path / "s.wav"] if command == "export" else []
    assert_one_line_error(cli(command, *extra, option, value), 2, fragment)
    assert not (tmp_path / "s.wav").exists()


@pytest.mark.parametrize("args", [["voices"], ["plan"], ["export", "-o", "-"], ["start"]])
def test_an_unknown_engine_is_a_command_line_mistake_in_every_command(args):
    # `coach voices --engine foo` exited 1 ("unknown speech engine"), the others 2.
    assert_one_line_error(cli(*args, "--engine", "festival"), 2,
                          "--engine must be one of espeak, piper, got 'festival'")


def test_unknown_voice_lists_voices(tmp_path):
    out = tmp_path / "s.txt"
    assert_one_line_error(cli("export", "-o", out, "--voice", "nosuchvoice"), 2, "--voice: unknown voice 'nosuchvoice'",
                          "gmw/en", "`coach voices` lists them all")
    assert not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["-o", "{tmp}/s.ogg"], "cannot tell the format of"),
    (["-o", "{tmp}/s.wav", "--format", "ogg"], "unknown format 'ogg'; use one of wav, txt, md, srt, vtt, json"),
    (["-o", "-", "--format", "wav"], "cannot be written to stdout (-o -); give a file name"),
])
def test_unknown_export_format_exit_2(tmp_path, args, fragment):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert_one_line_error(cli("export", *args), 2, fragment)
    assert not list(tmp_path.glob("s.*")) and not list(tmp_path.glob(".s.*"))


def test_output_into_a_missing_folder(tmp_path):
    target = tmp_path / "nope" / "s.wav"
    assert_one_line_error(cli("export", "-o", target), 1, f"folder {target.parent} does not exist", "create it first")
    assert not target.parent.exists()


def test_output_into_a_read_only_folder(tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() == 0:  # root may write anywhere: answer as the folder's permissions would for a user
        import coach.files

        real_access = os.access
        monkeypatch.setattr(coach.files.os, "access",
                            lambda path, mode: False if Path(path) == folder else real_access(path, mode))
    folder.chmod(0o555)
    try:
        assert_one_line_error(cli("export", "-o", folder / "s.wav"), 1, f"folder {folder} is not writable",
                              "choose another place")
        assert listing(folder) == []
    finally:
        folder.chmod(0o755)


def test_existing_output_without_force_is_untouched_and_costs_no_work(tmp_path, monkeypatch):
    import coach.session as session_module

    target = tmp_path / "s.wav"
    target.write_bytes(b"last week's session")
    os.utime(target, (1_000_000_000, 1_000_000_000))
    monkeypatch.setattr(session_module, "synthesize_clips", lambda *a, **k: pytest.fail("synthesized anyway"))
    assert_one_line_error(cli("export", "-o", target), 1, f"{target} already exists", "use --force")
    assert target.read_bytes() == b"last week's session" and target.stat().st_mtime == 1_000_000_000
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "config") == ["s.wav"]


# ---------------------------------------------------------------------------
# Settings file

@pytest.mark.parametrize("content, fragments", [
    ("speed = = 1\n", ["not a valid settings file"]),
    ("sped = 0.8\n", ['unknown setting "sped" (did you mean "speed"?)']),
    ('speed = "fast"\n', ["speed must be a number from 0.5 to 2, got 'fast'"]),
    ("countdown = inf\n", ["countdown must be a whole number of seconds from 0 to 10, got inf"]),
    ("countdown = 1e400\n", ["countdown must be a whole number of seconds from 0 to 10, got inf"]),
    ("volume = 5\n", ["volume must be between 0 and 1, got 5"]),
    (b"speed = 0.8\xff\n", ["not a valid settings file"]),
])
def test_a_broken_settings_file_names_the_file_and_the_reset(isolated_user_dirs, content, fragments):
    isolated_user_dirs.mkdir(parents=True, exist_ok=True)
    path = isolated_user_dirs / "config.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    for command in (["plan"], ["config", "show"], ["config", "set", "countdown", "3"]):
        assert_one_line_error(cli(*command), 1, f"{path}:", *fragments, "run `coach config reset`")
        assert path.read_bytes() == (content if isinstance(content, bytes) else content.encode())
    result = cli("config", "reset")
    assert result.exit_code == 0 and not path.exists()
    assert cli("plan", SHORT).exit_code == 0


@pytest.mark.parametrize("make, said", [
    (lambda path: os.mkfifo(path), "is a named pipe (FIFO), not a settings file"),
    (lambda path: path.symlink_to("/dev/zero"), "is a character device, not a settings file"),
    (lambda path: path.write_text("# " + "x" * 70_000 + "\n"), "is over 64 KiB, too big to be coach's settings"),
])
def test_a_settings_file_that_is_no_settings_file_is_one_line_not_a_hang(isolated_user_dirs, make, said):
    isolated_user_dirs.mkdir(parents=True, exist_ok=True)
    path = isolated_user_dirs / "config.toml"
    make(path)
    for command in (["plan", SHORT], ["config", "show"]):
        assert_one_line_error(cli(*command), 1, f"{path} {said}", "coach config reset")
    assert cli("config", "reset").exit_code == 0
    assert not path.exists() and not path.is_symlink()
    assert cli("plan", SHORT).exit_code == 0


def test_config_reset_says_when_there_was_nothing_to_reset(isolated_user_dirs, tmp_path, monkeypatch):
    result = cli("config", "reset")
    assert result.exit_code == 0 and result.output.startswith("No saved settings to reset")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("COACH_CONFIG_DIR", str(blocker))
    assert_one_line_error(cli("config", "reset"), 1, f"{blocker} is a file, not the settings folder")
    assert blocker.read_text() == "x"


def test_a_settings_file_that_is_a_folder(isolated_user_dirs):
    (isolated_user_dirs / "config.toml").mkdir(parents=True)
    assert_one_line_error(cli("plan"), 1, "config.toml is a folder", "coach config reset")
    assert cli("config", "reset").exit_code == 0
    assert cli("plan", SHORT).exit_code == 0


# ---------------------------------------------------------------------------
# Speech cache

def test_corrupt_cache_entries_are_synthesized_again_not_played_as_noise(dirs):
    first, second = dirs["out"] / "first.wav", dirs["out"] / "second.wav"
    assert run_coach("export", SHORT, "-o", first, cache=dirs["cache"], config=dirs["config"]).returncode == 0
    entries = sorted(dirs["cache"].glob("*.clip"))
    assert entries
    for number, entry in enumerate(entries):  # every kind of damage: cut short, bit flips, emptied
        data = entry.read_bytes()
        entry.write_bytes([data[: len(data) // 2], data[:-64] + bytes(b ^ 0xFF for b in data[-64:]), b""][number % 3])
    result = run_coach("export", SHORT, "-o", second, cache=dirs["cache"], config=dirs["config"])
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert digest(first) == digest(second)  # the same speech, sample for sample
    cache = SpeechCache(dirs["cache"])
    assert all(cache.get(e.name.removesuffix(".clip")) is not None for e in entries)  # replaced, whole


def _wav_frames(path: Path) -> int:
    """Frames in a WAV, after checking that its header agrees with the file (a whole file)."""
    with wave.open(str(path), "rb") as wav:
        frames = wav.getnframes()
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2 and wav.getframerate() == SAMPLE_RATE
    assert path.stat().st_size == 44 + 2 * frames
    return frames


def test_two_exports_filling_one_empty_cache_both_succeed(dirs, tmp_path):
    routine = tmp_path / "medium.toml"
    routine.write_text(long_routine_text(poses=12, seed=9))  # long enough for speech helpers too
    procs = []
    for name in ("a.wav", "b.wav"):
        command, env = coach_command("export", routine, "-o", dirs["out"] / name, cache=dirs["cache"],
                                     config=dirs["config"])
        procs.append(subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert all("Traceback" not in err for _, err in results)
    assert listing(dirs["out"]) == ["a.wav", "b.wav"]
    assert _wav_frames(dirs["out"] / "a.wav") > 0 and _wav_frames(dirs["out"] / "b.wav") > 0
    # espeak may render a text a few samples apart in each process (the xfail below), but
    # the first clip stored for a text is the one both go on with: the same WAV.
    assert digest(dirs["out"] / "a.wav") == digest(dirs["out"] / "b.wav")
    names = [n for n in listing(dirs["cache"]) if n != DEFAULT_VOICE_MEMO]  # espeak's note: kept on purpose
    assert names and all(n.endswith(".clip") and not n.startswith(".") for n in names)  # no temporary files
    cache = SpeechCache(dirs["cache"])
    assert all(cache.get(n.removesuffix(".clip")) is not None for n in names)  # every entry whole
    # From the filled cache, every later export is the same to the byte.
    again = [run_coach("export", routine, "-o", dirs["out"] / f"{n}.wav", cache=dirs["cache"], config=dirs["config"])
             for n in ("c", "d")]
    assert [r.returncode for r in again] == [0, 0]
    assert digest(dirs["out"] / "c.wav") == digest(dirs["out"] / "d.wav")


@pytest.mark.xfail(strict=True, reason="espeak-ng through pyttsx3 renders the same text a few samples longer or "
                   "shorter from one call to the next; the speech cache keeps the first clip of a text, so runs "
                   "and concurrent exports still agree (the test above)")
def test_the_engine_renders_the_same_text_to_the_same_samples():
    from coach.speech import get_engine

    engine = get_engine("espeak")
    text = "Lie down on your back with both legs long and breathe slowly."
    lengths = {len(engine.render(text, None, 1.0)) for _ in range(4)}
    assert len(lengths) == 1, lengths


# ---------------------------------------------------------------------------
# Faults

def test_a_line_with_nothing_to_say_is_found_before_any_speech_at_its_line(tmp_path):
    routine = tmp_path / "mine.toml"
    routine.write_text('title = "T"\nintro = ["Welcome.", "..."]\n[[poses]]\nname = "A"\nhold = 5\n')
    out = tmp_path / "s.wav"
    assert_one_line_error(cli("export", routine, "-o", out), 1, f"{routine}:2: intro line 2 has nothing to say",
                          "write words the voice can speak")
    assert not out.exists() and not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("existing", [False, True])
def test_disk_full_during_export_leaves_nothing_and_says_so(tmp_path, monkeypatch, existing):
    import coach.files

    target = tmp_path / "out" / "s.wav"
    target.parent.mkdir()
    if existing:
        target.write_bytes(b"the old export")
    disks = []
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        disks.append(FullDisk(real_fdopen(fd, *args, **kwargs), room=200_000))
        return disks[-1]

    monkeypatch.setattr(coach.files.os, "fdopen", fdopen)
    args = ["export", SHORT, "-o", target] + (["--force"] if existing else [])
    assert_one_line_error(cli(*args), 1, f"cannot write {target}: No space left on device",
                          "nothing was written; free some space or choose another place")
    # It failed in the middle of the audio. The export's file is the last one opened: with a
    # cold cache, clips and espeak's note of its default voice (42 bytes) are written first.
    assert disks and disks[-1].written > 44
    assert listing(target.parent) == (["s.wav"] if existing else [])
    if existing:
        assert target.read_bytes() == b"the old export"


# -- signals -------------------------------------------------------------------


def _wait_for(condition, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def _signal_and_time(process: subprocess.Popen, signum: int) -> tuple[float, str, str]:
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("coach did not stop within 10 s of the signal") from None
    stopped = time.monotonic() - sent
    out, err = process.communicate()
    return stopped, out, err


SIGNALS = [pytest.param(signal.SIGINT, 130, "Stopped.", id="SIGINT"),
           pytest.param(signal.SIGTERM, 143, "Stopped (terminated).", id="SIGTERM"),
           pytest.param(signal.SIGHUP, 129, "Stopped (hung up).", id="SIGHUP"),
           pytest.param(signal.SIGQUIT, 131, "Stopped (quit signal).", id="SIGQUIT")]  # Ctrl-\


@pytest.mark.parametrize("signum, code, said", SIGNALS)
def test_signal_during_synthesis_stops_at_once_and_cleans_up(dirs, long_routine, signum, code, said):
    target = dirs["out"] / "session.wav"
    command, env = coach_command("export", long_routine, "-o", target, cache=dirs["cache"], config=dirs["config"])
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        # Make sure it is synthesizing (a clip was cached, more to come), not still starting up.
        _wait_for(lambda: dirs["cache"].is_dir() and any(not p.name.startswith(".") for p in dirs["cache"].glob("*.clip")),
                  what="the first clip")  # a whole one, not a temporary file still being written
        helpers = [pid for pid in processes_with(str(dirs["cache"])) if pid != process.pid]
        made_before = len(list(dirs["cache"].glob("*.clip")))
        signalled_at = time.time()
        stopped, out, err = _signal_and_time(process, signum)
    finally:
        if process.poll() is None:
            process.kill()
    clips = list(dirs["cache"].glob("*.clip"))
    assert 0 < len(clips) < 240, "the signal came in the middle of synthesis"
    assert process.returncode == code, err
    # At once: no new work after the signal, only what each process had in hand (one clip
    # being made, one being stored). Counted, not timed, so a busy machine cannot fail it;
    # the loose time bound only catches a hang.
    in_hand = 2 * (1 + len(helpers))
    late = sorted(round(p.stat().st_mtime - signalled_at, 3) for p in clips if p.stat().st_mtime > signalled_at)
    assert len(clips) - made_before <= in_hand, \
        f"{len(clips) - made_before} clips were made after the signal (at +s: {late}; exit after {stopped:.2f} s)"
    assert stopped < STOP_WITHIN_S, f"took {stopped:.3f} s to stop"
    assert "Traceback" not in err + out and err.strip() == said
    # (stdout may still carry pyttsx3's "Audio saved to ...": the xfail test below)
    assert listing(dirs["out"]) == []  # no output, no .part file
    assert not [p.name for p in dirs["cache"].iterdir()
                if (not p.name.endswith(".clip") or p.name.startswith(".")) and p.name != DEFAULT_VOICE_MEMO]
    cache = SpeechCache(dirs["cache"])
    assert all(cache.get(p.name.removesuffix(".clip")) is not None for p in clips)  # whole entries only
    if (os.cpu_count() or 1) >= 2:  # a routine this long is shared with a helper process...
        assert helpers, "expected a speech helper process to be running"
    assert processes_with(str(dirs["cache"])) == []  # ...which is gone by the time coach has exited


def test_under_nohup_a_hang_up_does_not_stop_an_export(dirs, long_routine):
    # `nohup coach export ...` ignores SIGHUP; coach must leave it ignored and finish the job.
    target = dirs["out"] / "session.wav"
    command, env = coach_command("export", long_routine, "-o", target, cache=dirs["cache"], config=dirs["config"])
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        _wait_for(lambda: dirs["cache"].is_dir() and any(not p.name.startswith(".") for p in dirs["cache"].glob("*.clip")),
                  what="the first clip")  # a whole one, not a temporary file still being written
        process.send_signal(signal.SIGHUP)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert listing(dirs["out"]) == ["session.wav"] and _wav_frames(target) > 0


def test_interrupted_synthesis_keeps_the_engine_quiet(capfd):
    from coach.speech import get_engine

    engine = get_engine("espeak")
    text = " ".join(["Breathe out slowly and let your shoulders soften toward the mat."] * 8)
    rendering = threading.Event()

    def interrupt_only_while_rendering(signum, frame):
        if rendering.is_set():  # a late signal must not hit the rest of the test run
            raise KeyboardInterrupt

    def interrupt_once_samples_come():
        # Not after a fixed delay: on a busy machine the whole render can be over first.
        deadline = time.monotonic() + 30
        while rendering.is_set() and time.monotonic() < deadline:
            utterance = engine._driver.utterance
            if utterance is not None and utterance.chunks:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.0005)

    previous = signal.signal(signal.SIGINT, interrupt_only_while_rendering)
    interrupted = False
    try:
        for _ in range(5):  # the render may still end before the handler runs: then again
            rendering.set()
            sender = threading.Thread(target=interrupt_once_samples_come)
            sender.start()
            try:
                try:
                    engine.render(text, None, 1.0)
                finally:
                    rendering.clear()
                    sender.join()
            except KeyboardInterrupt:
                interrupted = True
                break
    finally:
        rendering.clear()
        signal.signal(signal.SIGINT, previous)
    assert interrupted, "the render was never interrupted"
    time.sleep(0.3)  # espeak's thread would finish the utterance by now
    assert len(engine.render("Still working.", None, 1.0)) > 0  # the engine survives the interrupt
    out, err = capfd.readouterr()
    assert "Audio saved" not in out + err


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "over-existing"])
@pytest.mark.parametrize("signum, code, said", SIGNALS)
def test_signal_during_wav_export_stops_at_once_and_leaves_no_file(dirs, long_routine, warm_long_cache,
                                                                   signum, code, said, existing):
    target = dirs["out"] / "session.wav"
    if existing:
        target.write_bytes(b"the session I exported yesterday")
    args = ["export", long_routine, "-o", target] + (["--force"] if existing else [])
    command, env = coach_command(*args, cache=warm_long_cache, config=dirs["config"])
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def writing() -> bool:
            parts = list(dirs["out"].glob(".session.wav.*.part"))
            return bool(parts) and parts[0].stat().st_size > 2_000_000

        _wait_for(writing, what="the WAV to be half written")
        stopped, out, err = _signal_and_time(process, signum)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, err
    assert stopped < STOP_WITHIN_S, f"took {stopped:.3f} s to stop"
    assert "Traceback" not in err and err.strip() == said and out == ""
    if existing:
        assert listing(dirs["out"]) == ["session.wav"]
        assert target.read_bytes() == b"the session I exported yesterday"
    else:
        assert listing(dirs["out"]) == []


def _catches(pid: int, signum: int) -> bool:
    """Whether the process has a handler for `signum`: coach.cli installs them as its first
    act, so from then on coach's own code is running (Python itself handles only SIGINT, so
    for SIGINT this waits for SIGTERM's handler, installed in the same breath)."""
    if signum == signal.SIGINT:
        signum = signal.SIGTERM
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) & (1 << (signum - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads signal dispositions from /proc")
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.1, 0.2])
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_while_coach_is_starting_up_prints_no_traceback(dirs, long_routine, warm_long_cache, signum, code,
                                                               delay):
    """A signal while coach imports typer and numpy, parses the command line or loads the
    routine and its cached speech: exit 130/143 at once, no traceback, nothing written. (The
    first milliseconds, while the Python interpreter itself starts, are Python's: see
    docs/reliability.md.) A WAV, so that the job outlasts the longest delay here."""
    target = dirs["out"] / "s.wav"
    command, env = coach_command("export", long_routine, "-o", target, cache=warm_long_cache, config=dirs["config"])
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _catches(process.pid, signum), timeout=30, what="coach's own code to start")
        time.sleep(delay)
        assert process.poll() is None, "coach finished before the signal: the test needs a longer job"
        stopped, out, err = _signal_and_time(process, signum)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, err
    assert "Traceback" not in err and err.strip() in ("", "Stopped.", "Stopped (terminated).", "Stopped (hung up).")
    assert stopped < STOP_WITHIN_S
    assert listing(dirs["out"]) == []


# A signal whose exception Python drops: coach is run through a bootstrap that makes the
# signal arrive, in the middle of loading the routine, where Python cannot keep its exception.
_DROP_A_SIGNAL = """
import atexit, signal, sys
import coach.cli, coach.routine, coach.signals

real_load = coach.routine.load_routine


class Unraisable:  # an exception raised in __del__ is printed as "Exception ignored" and dropped
    def __del__(self):
        signal.raise_signal(SIGNUM)


class Wrapped:  # Python 3.11 wraps an exception raised in __set_name__ in a RuntimeError
    def __set_name__(self, owner, name):
        signal.raise_signal(SIGNUM)


def load_with_a_signal(*args, **kwargs):
    routine = real_load(*args, **kwargs)
    if WHERE == "del":
        Unraisable()
    elif WHERE == "set_name":
        type("Loaded", (), {"attribute": Wrapped()})
    elif WHERE == "atexit":  # after the command has finished
        atexit.register(signal.raise_signal, SIGNUM)
    elif WHERE == "exit_check":  # while coach's own check at exit runs, after its first look at the record
        coach.cli._flush_standard_streams = flush_with_a_signal
    elif WHERE == "after_main_check":  # once main() has looked at the record, before its SystemExit is out
        coach.signals.recorded_stop = recorded_then_a_signal
    return routine


real_recorded_stop = coach.signals.recorded_stop


def recorded_then_a_signal():
    stop = real_recorded_stop()
    if sys._getframe(1).f_code is coach.cli._main.__code__:  # main()'s own look, not a command's
        coach.signals.recorded_stop = real_recorded_stop
        signal.raise_signal(SIGNUM)  # its exception leaves main() in place of the SystemExit
    return stop


real_flush = coach.cli._flush_standard_streams


def flush_with_a_signal():
    coach.cli._flush_standard_streams = real_flush
    signal.raise_signal(SIGNUM)
    real_flush()


coach.routine.load_routine = load_with_a_signal
sys.argv[0] = "coach"
coach.cli.main()
"""


@pytest.mark.parametrize("fmt", ["wav", "txt"])
@pytest.mark.parametrize("where", ["del", "set_name"])
@pytest.mark.parametrize("signum, code, said", SIGNALS)
def test_a_signal_whose_exception_python_drops_still_stops_coach(dirs, signum, code, said, where, fmt):
    target = dirs["out"] / f"s.{fmt}"
    command, env = coach_command("export", SHORT, "-o", target, cache=dirs["cache"], config=dirs["config"])
    bootstrap = _DROP_A_SIGNAL.replace("SIGNUM", f"signal.{signum.name}").replace("WHERE", repr(where))
    result = subprocess.run([sys.executable, "-c", bootstrap, *command[len(COACH):]], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr
    assert result.stderr.strip() == said  # no traceback, no "Exception ignored"
    assert listing(dirs["out"]) == []


@pytest.mark.parametrize("where", ["atexit", "exit_check", "after_main_check"])
@pytest.mark.parametrize("signum, code, said", SIGNALS)
def test_a_signal_while_python_exits_is_still_a_stop(dirs, signum, code, said, where):
    target = dirs["out"] / "s.txt"
    command, env = coach_command("export", SHORT, "-o", target, cache=dirs["cache"], config=dirs["config"])
    bootstrap = _DROP_A_SIGNAL.replace("SIGNUM", f"signal.{signum.name}").replace("WHERE", repr(where))
    result = subprocess.run([sys.executable, "-c", bootstrap, *command[len(COACH):]], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr
    # The file was whole before the signal came: it stays.
    wrote, stopped = result.stderr.strip().splitlines()
    assert wrote.startswith(f"Wrote {target} (txt, ") and stopped == said
    assert listing(dirs["out"]) == ["s.txt"]


def test_no_signal_is_lost_at_any_moment_of_an_export(tmp_path, long_routine, warm_long_cache):
    """bench/bench_signals.py in small: each signal at delays spread over start-up and the WAV
    export, none lost (exit 0, a file written, a traceback, another exit code, a hang). The
    bench sends hundreds, from a cold cache too, with busy loops beside it."""
    delays = [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6]
    kinds = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
    outcomes = [signal_one_export(long_routine, tmp_path, warm_long_cache, tmp_path / "config", kinds[i % 3], delay)
                for i, delay in enumerate(delays)]
    lost = [o for o in outcomes if o.lost]
    assert not lost, lost
    assert sum(o.kind == "ok" for o in outcomes) >= len(delays) - 2, outcomes  # at most 2 finished first


# ---------------------------------------------------------------------------
# Output

@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_stdout_closed_early_prints_no_traceback(dirs, long_routine, warm_long_cache, reader):
    """`coach export -o - | head -1` with a big export: head leaves while coach still writes."""
    command, env = coach_command("export", long_routine, "-o", "-", "--format", "json",
                                 cache=warm_long_cache, config=dirs["config"])
    shell = " ".join(f"'{part}'" for part in command) + f" | {reader}; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", shell], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.stdout == ("{\n" if reader == "head -1" else "")
    assert result.stderr == "" and result.returncode == 0


COMMANDS_THAT_PRINT = {
    "list": ["list"],
    "plan": ["plan", SHORT],
    "export-txt": ["export", "-o", "-", "--format", "txt", SHORT],
    "export-srt": ["export", "-o", "-", "--format", "srt", SHORT],
    "validate": ["validate", SHORT],
    "voices": ["voices", "--engine", "espeak"],
    "config-show": ["config", "show"],
    "cache-show": ["cache", "show"],
    "version": ["--version"],
    "help": ["--help"],
}
FULL = "Error: cannot write to standard output: no space left on device; free some space or send the output elsewhere"
CLOSED = ("Error: cannot write to standard output: it is closed; run the command with its output going to a "
          "terminal, a file or a pipe")


def _in_shell(args, redirect: str, dirs) -> subprocess.CompletedProcess:
    command, env = coach_command(*args, cache=dirs["cache"], config=dirs["config"])
    shell = " ".join(f"'{part}'" for part in command) + " " + redirect
    return subprocess.run(["bash", "-c", shell], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("command", list(COMMANDS_THAT_PRINT))
def test_output_to_a_full_disk_is_one_line_exit_1(dirs, command):
    result = _in_shell(COMMANDS_THAT_PRINT[command], "> /dev/full", dirs)
    assert (result.returncode, result.stderr) == (1, FULL + "\n")


@pytest.mark.parametrize("command", ["list", "export-srt", "validate", "version"])
def test_output_to_a_closed_stdout_is_one_line_exit_1(dirs, command):
    result = _in_shell(COMMANDS_THAT_PRINT[command], ">&-", dirs)
    assert (result.returncode, result.stderr) == (1, CLOSED + "\n")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("stderr", ["2>&-", "2>/dev/full"])
@pytest.mark.parametrize("command", ["list", "export-txt"])
def test_when_stderr_is_gone_too_coach_exits_quietly_with_the_code(dirs, command, stderr):
    # The shell reports what happened to its own stderr: nothing may come from coach there.
    result = _in_shell(COMMANDS_THAT_PRINT[command], f"> /dev/full {stderr}; echo \"exit $?\" >&2", dirs)
    assert result.stderr == "exit 1\n" and result.stdout == ""


def test_an_export_to_a_file_does_not_need_stdout(dirs):
    result = _in_shell(["export", SHORT, "-o", dirs["out"] / "s.txt"], "> /dev/full", dirs)
    assert result.returncode == 0 and listing(dirs["out"]) == ["s.txt"]


@pytest.mark.parametrize("fmt", ["txt", "wav"])
def test_an_export_to_a_file_does_not_need_stderr(dirs, fmt):
    # Started with stderr closed (some daemons and cron set-ups): the progress bar's check
    # asked None whether it was a terminal, and the export died with nothing written or said.
    result = _in_shell(["export", SHORT, "-o", dirs["out"] / f"s.{fmt}"], "2>&-", dirs)
    assert result.returncode == 0 and listing(dirs["out"]) == [f"s.{fmt}"]


@pytest.mark.parametrize("command", ["list", "plan", "validate", "help"])
def test_a_reader_that_leaves_early_ends_the_output_quietly(dirs, command):
    result = _in_shell(COMMANDS_THAT_PRINT[command], "| true; exit ${PIPESTATUS[0]}", dirs)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("columns", [30, 45])
def test_help_in_a_narrow_terminal_names_every_option_in_full(dirs, columns):
    # Typer's panels cut names short there ("--…"); the plain help wraps them instead.
    command, env = coach_command("export", "--help", cache=dirs["cache"], config=dirs["config"])
    env["COLUMNS"] = str(columns)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    for option in ("--output", "--format", "--bitrate", "--force", "--speed", "--voice", "--hold"):
        assert option in result.stdout, result.stdout
    assert "…" not in result.stdout


def test_every_command_writes_its_output_through_the_cli_edge():
    """stdout is written in one place (cli.write_output), so each failure above is one line."""
    import ast

    import coach.cli

    tree = ast.parse(Path(coach.cli.__file__).read_text())

    def writes_to_stdout(call: ast.Call) -> bool:
        if any(k.arg in ("err", "file") for k in call.keywords):
            return False
        if isinstance(call.func, ast.Name):
            return call.func.id == "print"
        return isinstance(call.func, ast.Attribute) and call.func.attr in ("echo", "secho") or \
            isinstance(call.func, ast.Attribute) and call.func.attr == "print" and \
            not (isinstance(call.func.value, ast.Name) and call.func.value.id == "console")  # into a string

    direct = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and writes_to_stdout(node)]
    assert direct == [], f"coach/cli.py writes to stdout directly on lines {direct}; use write_output"


# ---------------------------------------------------------------------------
# Properties: no speech ever overlaps any chime (test_timeline.py checks the rest).
# Holds here are at least twice the longest chime; shorter ones are the known gap below.

_words = st.lists(st.sampled_from(["reach", "breathe", "soften", "your", "leg", "{side}", "slowly"]),
                  min_size=1, max_size=12).map(" ".join)
_poses = st.builds(Pose, name=st.sampled_from(["A", "B"]), setup=st.lists(_words, max_size=3).map(tuple),
                   hold=st.floats(2 * MAX_CHIME_SECONDS, 90), cues=st.lists(st.builds(Cue, _words), max_size=4).map(tuple),
                   release=st.lists(_words, max_size=2).map(tuple))
_routines = st.builds(Routine, title=st.just("generated"), poses=st.lists(_poses, min_size=1, max_size=4).map(tuple),
                      sides=st.sampled_from([("right", "left"), ("left", "right"), ()]),
                      intro=st.lists(_words, max_size=2).map(tuple), outro=st.lists(_words, max_size=2).map(tuple),
                      side_switch=st.lists(_words, max_size=2).map(tuple))


@settings(max_examples=200, deadline=None)
@given(routine=_routines, speed=st.floats(0.5, 2.0), countdown=st.integers(0, 5),
       chimes=st.fixed_dictionaries({k: st.integers(samples(0.2), samples(2.0))
                                     for k in ("hold_start", "midpoint", "side_switch")}))
def test_no_speech_overlaps_any_chime(routine, speed, countdown, chimes):
    options = TimelineOptions(speed=speed, countdown=countdown)
    texts = spoken_texts(routine, options)
    lengths = {t: samples(0.35 * len(t.split()) / speed + 0.2) for t in texts}
    timeline = build_timeline(routine, lengths, chimes, options)
    speech = [e for e in timeline.events if e.kind == "speech"]
    rings = [e for e in timeline.events if e.kind == "chime"]
    for s in speech:
        for c in rings:
            assert not (s.start < c.end and c.start < s.end), (s, c)
    assert all(e.end <= timeline.length for e in timeline.events)
    assert timeline.length >= SAMPLE_RATE  # never empty


def test_release_after_a_very_short_hold_waits_for_the_midpoint_chime():
    routine = Routine(title="short", poses=(Pose(name="A", hold=1.0, release=("Release.",)),), sides=())
    chimes = {"hold_start": samples(0.5), "midpoint": samples(1.0), "side_switch": samples(0.5)}
    timeline = build_timeline(routine, {"Release.": samples(0.8)}, chimes, TimelineOptions())
    midpoint = next(e for e in timeline.events if e.part == "midpoint")
    release = next(e for e in timeline.events if e.part == "release")
    assert release.start >= midpoint.end


def test_a_settings_folder_that_is_a_file_says_so(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("COACH_CONFIG_DIR", str(blocker))
    for command in (["plan", SHORT], ["config", "show"], ["config", "set", "speed", "0.9"]):
        assert_one_line_error(cli(*command), 1, f"{blocker} is a file, not the settings folder",
                              "COACH_CONFIG_DIR points at it")
    assert_one_line_error(cli("new", "mine"), 1, f"{blocker} is a file, not the settings folder",
                          "COACH_CONFIG_DIR points at it")
    # coach list still lists the built-in routines, and says in one line why yours cannot be kept
    # (it said they "go in" a folder inside the file).
    result = cli("list")
    assert result.exit_code == 0 and "leg-stretches" in result.stdout
    assert "routines go in" not in result.stdout
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Warning: your own routines cannot be kept: ")
    assert f"{blocker} is a file, not the settings folder" in result.stderr
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("xdg", ["", "relative/config"])
def test_an_empty_or_relative_xdg_config_home_is_ignored(tmp_path, monkeypatch, xdg):
    # As the XDG spec says; click's get_app_dir took it as it was, a folder "coach" wherever coach ran.
    from coach.settings import config_dir

    monkeypatch.delenv("COACH_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    assert config_dir() == tmp_path / ".config" / "coach"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "coach"


def test_wrote_names_a_file_with_a_newline_on_one_line(tmp_path):
    """A name with control characters is shown escaped: one line, and still the file's name."""
    name = "morning\nstretch\t1.txt"
    result = cli("export", SHORT, "-o", tmp_path / name)
    assert result.exit_code == 0, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Wrote '") and "morning\\nstretch\\t1.txt'" in line, line
    assert listing(tmp_path) == [name]
