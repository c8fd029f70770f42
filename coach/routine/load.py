"""Reading a routine file: the only module that reads TOML.

Whatever the bytes on disk, loading returns a `Routine` or raises one `RoutineError`
(tests/test_routine_fuzz.py); validate.py turns the parsed TOML into the model.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from coach.errors import RoutineError, RoutineNotFoundError
from coach.files import open_without_waiting, read_if_regular
from coach.routine.library import available_routines, did_you_mean, resolve_routine
from coach.routine.model import Routine
from coach.routine.paths import FOLDER, MISSING, NOT_REGULAR, file_problem, os_problem
from coach.routine.validate import Validator
from coach.routine.where import Place, SourceLines

MAX_FILE_BYTES = 1024 * 1024


def load_routine(name_or_path: str | os.PathLike[str] | None = None) -> Routine:
    """Read and validate a routine by name (see `coach list`) or path; the built-in one by default."""
    path = resolve_routine(name_or_path)
    text = _read_text(path)
    return Validator(path, text).routine(_parse_toml(text, path))


def load_routine_text(text: str, path: Path | str = "<text>") -> Routine:
    """Validate routine TOML given as a string (tests, tools); chime paths are relative to `path`."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise RoutineError("is over 1 MiB; a routine may be at most 1 MiB", path=path)
    text = text.removeprefix("\ufeff")
    return Validator(Path(path), text).routine(_parse_toml(text, path))


def chime_line(path: Path | str, kind: str) -> int | None:
    """The line of `path` that names the chime `kind` (for an error found when its WAV is
    read, after validation); None when the file cannot be read again."""
    try:
        data = read_if_regular(path)
        if data is None:
            return None
        text = data.decode("utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeError):
        return None
    return SourceLines(text).line(Place(table="chimes"), kind)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_DECLARED_TWICE = re.compile(r"Cannot declare (\(.*\)) twice$")


def _parse_toml(text: str, path: Path | str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        reason = str(err)
        line = column = None
        position = _TOML_POSITION.search(reason)
        if position:
            line, column = int(position[1]), int(position[2])
            reason = reason[: position.start()]
        elif "end of document" in reason:
            line = max(1, len(text.splitlines()))
            reason = reason.replace("(at end of document)", "").strip() + " at the end of the file"
        declared_twice = _DECLARED_TWICE.match(reason)
        if declared_twice and line is not None:
            # tomllib names the table as a Python tuple ("('poses',)"); say what to write instead.
            header = text.splitlines()[line - 1].split("#")[0].strip() if line <= len(text.splitlines()) else ""
            name = ".".join(re.findall(r"'((?:[^'\\]|\\.)*)'", declared_twice[1])) or declared_twice[1]
            if name in ("poses", "poses.cues") and not header.startswith("[["):
                each = "pose" if name == "poses" else "cue"
                raise RoutineError(f"{name} must be written [[{name}]] with double brackets, once above each "
                                   f"{each}; found {header or '[' + name + ']'}", path=path, line=line) from None
            raise RoutineError(f"[{name}] is written twice; keep one [{name}] line with all of its keys below it",
                               path=path, line=line) from None
        where = f" at column {column}" if column else ""
        reason = reason[:1].lower() + reason[1:]
        raise RoutineError(f"not valid TOML{where}: {reason}; check the quotes, brackets and = on that line",
                           path=path, line=line) from None
    except RecursionError:
        raise RoutineError("is nested too deeply to be a routine (lists or tables inside each other "
                           "hundreds of levels deep)", path=path) from None
    except ValueError:
        # tomllib passes on int()'s refusal of numbers with thousands of digits.
        line = next((i for i, ln in enumerate(text.splitlines(), 1) if re.search(r"[0-9_]{1000}", ln)), None)
        raise RoutineError("has a number with thousands of digits; a routine needs ordinary numbers like 45",
                           path=path, line=line) from None


def _read_text(path: Path) -> str:
    problem = file_problem(path)
    if problem == MISSING:
        # A file beside it first (the user gave a path), compared by name without ".toml",
        # which every candidate shares and would make unrelated names look alike.
        hint = did_you_mean(path.stem, _siblings(path), suffix=".toml") \
            or did_you_mean(path.stem, available_routines())
        raise RoutineNotFoundError(f"no such file{hint}; check the name, or see `coach list`", path=path)
    if problem == FOLDER:
        raise RoutineError("is a folder, not a routine file; name a .toml file inside it", path=path)
    if problem and problem.startswith(NOT_REGULAR):
        raise RoutineError(f"{problem}; give the path of a routine file (.toml)", path=path)
    if problem:
        raise RoutineError(problem, path=path)
    try:
        # Opened without waiting, in case the file was replaced by a pipe since the check above;
        # read at most one byte past the limit, so a huge file cannot fill memory.
        with open(path, "rb", opener=open_without_waiting) as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise RoutineError(f"{NOT_REGULAR}; give the path of a routine file (.toml)", path=path)
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise RoutineError(os_problem(err), path=path) from None
    if len(raw) > MAX_FILE_BYTES:
        raise RoutineError("is over 1 MiB; a routine may be at most 1 MiB. Is this the right file?", path=path)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RoutineError("is saved as UTF-16; save it as UTF-8 (in your editor's Save As, pick UTF-8)",
                           path=path, line=1)
    try:
        return raw.decode("utf-8-sig")  # -sig: a byte-order mark some Windows editors add is fine
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise RoutineError(
            f"is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "save the file as UTF-8 (in your editor's Save As, pick UTF-8)",
            path=path, line=line,
        ) from None


def _siblings(path: Path) -> list[str]:
    try:
        return [p.stem for p in path.parent.glob("*.toml")][:1000]
    except (OSError, ValueError):
        return []
