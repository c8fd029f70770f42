"""The speech helper process, started before coach's slow imports when a cold export needs it.

A cold export of a long routine shares its synthesis with a helper process
(coach.speech.scheduler). Started where the scheduler first knows which texts are
missing, the helper spends its first half second importing numpy and starting espeak-ng
while this process already speaks alone; started here, at the top of `coach export`, it
does that while this process does the same. It then waits on its stdin for the request
the scheduler sends (`take` hands the process over) and, if none comes, exits when its
stdin closes.

Only the standard library and coach.routine are imported here: the point is to come
before numpy, typer and the speech engine. Nothing here can fail the command; whatever
goes wrong only means the helper starts later, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
from pathlib import Path

HELPER_COMMAND = [sys.executable, "-m", "coach.speech.helper"]
# Below this much text a helper (about 0.1 s to start, on a core this process also needs)
# costs more than it saves: measured, a 40-cue routine is 0.2 s in one process.
HELPER_MIN_CHARS = 8000
CLIP_SUFFIX = ".clip"

_early: subprocess.Popen | None = None


def cache_dir() -> Path:
    """$COACH_CACHE_DIR, else $XDG_CACHE_HOME/coach/speech, else ~/.cache/coach/speech."""
    if os.environ.get("COACH_CACHE_DIR"):
        return Path(os.environ["COACH_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores relative paths
    return base / "coach" / "speech"


def helper_env(cache: Path) -> dict[str, str]:
    """The helper's environment: this process's, with the same cache and coach importable."""
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, COACH_CACHE_DIR=str(cache))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def spawn_helper(command: list[str], cache: Path, engine: str | None = None) -> subprocess.Popen:
    """The helper process, waiting for its request on stdin (OSError when it cannot start).
    With `engine` it starts that engine while it waits."""
    return subprocess.Popen(
        command + ([f"--engine={engine}"] if engine else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=helper_env(cache),
        text=True,
        encoding="utf-8",
        start_new_session=True,  # Ctrl-C is for this process; it stops the helper itself
    )


_decided = False
EXPORT_FLAGS = {"--force", "--help"}  # export's options without a value: every other takes one


def start_for_command_line(args: list[str]) -> None:
    """For `coach export ...` (args: the command line after `coach`), start_early with its
    routine and engine, read from the arguments before typer is even imported. A command
    line this reading gets wrong only means no early helper, or one let go unused."""
    if args[:1] != ["export"]:
        return
    routine = engine = None
    rest = iter(args[1:])
    for arg in rest:
        if arg == "--":
            routine = next(rest, None) if routine is None else routine
            break
        if arg.startswith("--engine="):
            engine = arg.partition("=")[2]
        elif arg == "--engine":
            engine = next(rest, None)
        elif arg.startswith("-") and arg != "-":
            if arg not in EXPORT_FLAGS and "=" not in arg:
                next(rest, None)  # its value
        elif routine is None:
            routine = arg
    start_early(routine, engine)


def start_early(routine_name: str | None, engine: str | None):
    """Start the helper now if the routine's speech will surely not all come from the cache
    and is long enough to share. Returns the routine it loaded to decide (the command goes
    on with it rather than read and check the file again, about 15 ms), or None. Never
    raises: a routine that does not load is reported by the command's own load. Decides
    once per process."""
    global _early, _decided
    if _decided or (os.cpu_count() or 1) < 2 or not sys.executable:
        return None
    _decided = True
    try:
        from coach.routine import load_routine

        routine = load_routine(routine_name)
    except Exception:  # noqa: BLE001 - an optimisation only; the command reports real problems itself
        return None
    try:
        texts = routine_texts(routine)
        if sum(map(len, texts)) < HELPER_MIN_CHARS or holds_as_many(cache_dir(), len(texts)):
            return routine
        _early = spawn_helper(HELPER_COMMAND, cache_dir(), engine or "espeak")
    except Exception:  # noqa: BLE001 - as above
        return routine
    atexit.register(release)
    return routine


def routine_texts(routine) -> set[str]:
    """The routine's texts as written (placeholders unfilled): fewer than it speaks, never more."""
    texts = set(routine.intro) | set(routine.outro) | set(routine.side_switch)
    for pose in routine.poses:
        texts |= set(pose.setup) | set(pose.release) | {cue.text for cue in pose.cues}
    return texts


def holds_as_many(folder: Path, count: int) -> bool:
    """Whether the cache folder holds at least `count` clips: only then can it hold all of a
    routine's; with fewer, some clips must be synthesized whatever they are."""
    found = 0
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            found += entry.name.endswith(CLIP_SUFFIX)
            if found >= count:
                return True
    return False


def take() -> subprocess.Popen | None:
    """The helper started early, for the scheduler to send it its request (once). The next
    export in this process (a program may run several) decides afresh."""
    global _early, _decided
    process, _early, _decided = _early, None, False
    if process is not None and process.poll() is not None:
        return None
    return process


def release() -> None:
    """A helper started early and not needed: closing its stdin makes it exit."""
    process = take()
    if process is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.05)
