"""Routine files: TOML in, a validated, frozen `Routine` out.

This is the only module that knows TOML routines. Every problem becomes a
`RoutineError` that names the file, the line where one can be found, the pose and
the field, says what was expected and what was found, and how to fix it.
"""

from __future__ import annotations

import difflib
import os
import string
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from coach.errors import RoutineError, RoutineNotFoundError

MAX_FILE_BYTES = 1024 * 1024
MAX_POSES = 100
MAX_TEXT_CHARS = 600
MAX_LINES_PER_LIST = 50
MIN_HOLD, MAX_HOLD = 1.0, 3600.0
MIN_SPEED, MAX_SPEED = 0.5, 2.0
MAX_SESSION_SECONDS = 4 * 3600
PLACEHOLDERS = ("side", "other_side")
CHIME_KINDS = ("hold_start", "midpoint", "side_switch")

# Rough speech length for checks made before any audio exists (espeak's default rate).
WORDS_PER_MINUTE = 175.0
# Seconds after a chime starts before speech may begin, and the gap kept between cues;
# the timeline uses the same numbers, so a routine that validates also fits when played.
CHIME_CLEARANCE = 1.2
CUE_GAP = 0.5


@dataclass(frozen=True)
class Cue:
    """A line spoken during a hold, at `at` seconds into it, or spread evenly when None."""

    text: str
    at: float | None = None


@dataclass(frozen=True)
class Pose:
    name: str
    targets: str = ""
    setup: tuple[str, ...] = ()
    hold: float = 30.0
    cues: tuple[Cue, ...] = ()
    release: tuple[str, ...] = ()


@dataclass(frozen=True)
class Routine:
    title: str
    poses: tuple[Pose, ...]
    description: str = ""
    credit: str = ""
    props: tuple[str, ...] = ()
    sides: tuple[str, ...] = ("right", "left")
    hold: float = 30.0
    speed: float | None = None
    voice: str | None = None
    intro: tuple[str, ...] = ()
    outro: tuple[str, ...] = ()
    side_switch: tuple[str, ...] = ()
    chimes: dict[str, Path] = field(default_factory=dict)
    source: Path | None = None

    @property
    def name(self) -> str:
        return self.source.stem if self.source else self.title

    @property
    def total_hold_seconds(self) -> float:
        return sum(p.hold for p in self.poses) * max(1, len(self.sides))


def fill_placeholders(text: str, side: str | None, other_side: str | None) -> str:
    """Put the side names into a text; validation has already checked the placeholders."""
    return text.format(side=side or "", other_side=other_side or "")


def estimate_speech_seconds(text: str, speed: float = 1.0) -> float:
    """A rough speech length from the word count; only for checks before synthesis."""
    words = max(1, len(text.split()))
    return words * 60.0 / (WORDS_PER_MINUTE * speed) + 0.3


# ---------------------------------------------------------------------------
# Finding routines

def builtin_cues_dir() -> Path:
    """The shipped routines: inside the installed wheel, or the repo's cues/ when editable."""
    packaged = resources.files("coach") / "cues"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "cues"


def user_cues_dir() -> Path:
    from coach.settings import config_dir

    return config_dir() / "routines"


DEFAULT_ROUTINE = "leg-stretches"


def routine_search_dirs() -> list[Path]:
    return [user_cues_dir(), builtin_cues_dir()]


def available_routines() -> dict[str, Path]:
    """Routine name -> file; a user's routine of the same name shadows a built-in one."""
    found: dict[str, Path] = {}
    for folder in reversed(routine_search_dirs()):
        try:
            for path in sorted(folder.glob("*.toml")):
                found[path.stem] = path
        except OSError:
            continue
    return found


def resolve_routine(name_or_path: str | os.PathLike[str] | None) -> Path:
    """A routine name (see `coach list`) or a path, as a file path; error with suggestions."""
    if name_or_path is None:
        name_or_path = DEFAULT_ROUTINE
    text = os.fspath(name_or_path)
    looks_like_path = os.sep in text or text.endswith(".toml") or Path(text).exists()
    if looks_like_path:
        return Path(text)
    known = available_routines()
    if text in known:
        return known[text]
    close = difflib.get_close_matches(text, list(known), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise RoutineNotFoundError(
        f"no routine named {text!r}.{hint} See `coach list`, or give a path to a .toml file."
    )


# ---------------------------------------------------------------------------
# Loading

def load_routine(name_or_path: str | os.PathLike[str] | None = None) -> Routine:
    """Read and validate a routine by name or path."""
    path = resolve_routine(name_or_path)
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise RoutineError(f"not valid TOML: {err}. Check the quoting and brackets on that line.",
                           path=path, line=_toml_error_line(err)) from None
    except RecursionError:
        raise RoutineError("nesting is too deep to be a routine.", path=path) from None
    return _Validator(path, text).routine(data)


def load_routine_text(text: str, path: Path | str = "<text>") -> Routine:
    """Validate routine TOML given as a string (tests, tools)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise RoutineError(f"not valid TOML: {err}", path=path, line=_toml_error_line(err)) from None
    except RecursionError:
        raise RoutineError("nesting is too deep to be a routine.", path=path) from None
    return _Validator(Path(path), text).routine(data)


def _toml_error_line(err: tomllib.TOMLDecodeError) -> int | None:
    lineno = getattr(err, "lineno", None)
    if lineno:
        return int(lineno)
    marker = "at line "
    message = str(err)
    if marker in message:
        digits = message.split(marker, 1)[1].split(",")[0].split(")")[0]
        if digits.isdigit():
            return int(digits)
    return None


def _read_text(path: Path) -> str:
    try:
        if path.is_dir():
            raise RoutineError("is a folder, not a routine file. Name a .toml file inside it.", path=path)
        if not path.exists():
            if path.is_symlink():
                raise RoutineError("is a broken symbolic link.", path=path)
            known = available_routines()
            close = difflib.get_close_matches(path.stem, list(known), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else " See `coach list`."
            raise RoutineNotFoundError(f"no such file.{hint}", path=path)
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RoutineError(
                f"file is {size:,} bytes; a routine may be at most 1 MiB. Is this the right file?", path=path
            )
        raw = path.read_bytes()
    except RoutineError:
        raise
    except PermissionError:
        raise RoutineError("cannot be read: permission denied. Check the file's permissions.", path=path) from None
    except OSError as err:
        raise RoutineError(f"cannot be read: {err.strerror or err}.", path=path) from None
    if len(raw) > MAX_FILE_BYTES:
        raise RoutineError("file is over 1 MiB; a routine may be at most 1 MiB.", path=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise RoutineError(
            f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}). Save the file as UTF-8.",
            path=path, line=line,
        ) from None


# ---------------------------------------------------------------------------
# Validation

_TOP_KEYS = ("title", "description", "credit", "props", "intro", "outro", "side_switch",
             "defaults", "chimes", "poses")
_DEFAULT_KEYS = ("hold", "sides", "speed", "voice")
_POSE_KEYS = ("name", "targets", "setup", "hold", "cues", "release")
_CUE_KEYS = ("text", "at")


def _type_name(value: Any) -> str:
    return {
        str: "a string", int: "a whole number", float: "a number", bool: "true/false",
        list: "a list", dict: "a table",
    }.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Validator:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    # -- locating a field in the source, so errors can name a line --------
    def _line_of(self, key: str | None, pose_index: int | None = None, table: str | None = None) -> int | None:
        start, end = 0, len(self.lines)
        if pose_index is not None:
            headers = [i for i, line in enumerate(self.lines) if line.strip().startswith("[[poses]]")]
            if pose_index < len(headers):
                start = headers[pose_index]
                end = headers[pose_index + 1] if pose_index + 1 < len(headers) else len(self.lines)
                if key is None:
                    return start + 1
        elif table is not None:
            for i, line in enumerate(self.lines):
                if line.strip().replace(" ", "") == f"[{table}]":
                    start = i
                    break
        if key is None:
            return None
        for i in range(start, end):
            stripped = self.lines[i].lstrip()
            if stripped.startswith(key) and stripped[len(key):].lstrip().startswith("="):
                return i + 1
        return None

    def fail(self, message: str, *, key: str | None = None, pose: tuple[int, str | None] | None = None,
             table: str | None = None) -> RoutineError:
        line = self._line_of(key, pose[0] - 1 if pose else None, table)
        return RoutineError(message, path=self.path, line=line, pose=pose, field=key)

    def _unknown_keys(self, table: dict[str, Any], allowed: tuple[str, ...], where: str,
                      pose: tuple[int, str | None] | None = None, table_name: str | None = None) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f' (did you mean "{close[0]}"?)' if close else f" (allowed: {', '.join(allowed)})"
                raise self.fail(f'unknown key "{key}" in {where}{hint}', key=key, pose=pose, table=table_name)

    # -- typed getters --------------------------------------------------------
    def _text(self, value: Any, key: str, pose=None, table=None, *, sided: bool, allow_empty=False) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{key} must be a string, got {_type_name(value)} ({_show(value)})",
                            key=key, pose=pose, table=table)
        if not value.strip() and not allow_empty:
            raise self.fail(f"{key} is empty; write the words to speak or remove the line",
                            key=key, pose=pose, table=table)
        if len(value) > MAX_TEXT_CHARS:
            raise self.fail(f"{key} is {len(value)} characters; keep one spoken line under {MAX_TEXT_CHARS} "
                            "(split it into several lines)", key=key, pose=pose, table=table)
        bad = [ch for ch in value if not ch.isprintable() and ch not in " "]
        if bad:
            raise self.fail(f"{key} contains a control character (U+{ord(bad[0]):04X}); "
                            "write it as plain text on one line", key=key, pose=pose, table=table)
        self._check_placeholders(value, key, pose, table, sided=sided)
        return value

    def _check_placeholders(self, value: str, key: str, pose, table, *, sided: bool) -> None:
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError:
            raise self.fail(f"{key} has an unmatched brace in {_show(value)}; use {{side}} for a "
                            "placeholder or {{{{ }}}} for a literal brace", key=key, pose=pose, table=table) from None
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if name not in PLACEHOLDERS or spec or conversion:
                close = difflib.get_close_matches(name, PLACEHOLDERS, n=1, cutoff=0.5)
                hint = f" (did you mean {{{close[0]}}}?)" if close else ""
                raise self.fail(f"{key} has an unknown placeholder {{{name}}}{hint}; "
                                f"known: {{side}}, {{other_side}}", key=key, pose=pose, table=table)
            if not sided:
                raise self.fail(f"{key} uses {{{name}}}, but this routine has no sides "
                                "(set defaults.sides)", key=key, pose=pose, table=table)

    def _lines(self, value: Any, key: str, pose=None, table=None, *, sided: bool) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(f"{key} must be a string or a list of strings, got {_type_name(value)} "
                            f"({_show(value)})", key=key, pose=pose, table=table)
        if len(value) > MAX_LINES_PER_LIST:
            raise self.fail(f"{key} has {len(value)} lines; at most {MAX_LINES_PER_LIST}",
                            key=key, pose=pose, table=table)
        return tuple(self._text(item, key, pose, table, sided=sided) for item in value)

    def _number(self, value: Any, key: str, low: float, high: float, unit: str, pose=None, table=None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{key} must be a number{unit and ' of ' + unit}, got {_type_name(value)} "
                            f"({_show(value)})", key=key, pose=pose, table=table)
        if not (low <= value <= high):  # also rejects NaN
            raise self.fail(f"{key} must be between {low:g} and {high:g}{unit and ' ' + unit}, got {value:g}",
                            key=key, pose=pose, table=table)
        return float(value)

    # -- the routine ----------------------------------------------------------
    def routine(self, data: dict[str, Any]) -> Routine:
        if not data:
            raise self.fail("the routine is empty: it needs a title and at least one [[poses]] table "
                            "(see the README's routine format)")
        self._unknown_keys(data, _TOP_KEYS, "the routine")

        defaults = data.get("defaults", {})
        if not isinstance(defaults, dict):
            raise self.fail(f"defaults must be a table [defaults], got {_type_name(defaults)}", key="defaults")
        self._unknown_keys(defaults, _DEFAULT_KEYS, "[defaults]", table_name="defaults")

        sides = defaults.get("sides", ["right", "left"])
        if not isinstance(sides, list) or not all(isinstance(s, str) and s.strip() for s in sides):
            raise self.fail(f'defaults.sides must be a list of side names like ["right", "left"], '
                            f"got {_show(sides)}", key="sides", table="defaults")
        if len(sides) > 4 or len(set(sides)) != len(sides):
            raise self.fail(f"defaults.sides must list up to 4 different sides, got {_show(sides)}",
                            key="sides", table="defaults")
        sided = bool(sides)

        title = data.get("title")
        if title is None:
            raise self.fail('the routine has no title; add a line like title = "Evening stretch" at the top')
        title = self._text(title, "title", sided=False)

        hold = self._number(defaults.get("hold", 30), "hold", MIN_HOLD, MAX_HOLD, "seconds", table="defaults")
        speed = defaults.get("speed")
        if speed is not None:
            speed = self._number(speed, "speed", MIN_SPEED, MAX_SPEED, "", table="defaults")
        voice = defaults.get("voice")
        if voice is not None:
            voice = self._text(voice, "voice", table="defaults", sided=False)

        props = data.get("props", [])
        if not isinstance(props, list) or not all(isinstance(p, str) for p in props):
            raise self.fail(f'props must be a list of strings like ["strap"], got {_show(props)}', key="props")

        poses_data = data.get("poses")
        if poses_data is None or poses_data == []:
            raise self.fail("the routine has no poses: add at least one [[poses]] table with a name")
        if not isinstance(poses_data, list) or not all(isinstance(p, dict) for p in poses_data):
            raise self.fail("poses must be written as [[poses]] tables", key="poses")
        if len(poses_data) > MAX_POSES:
            raise self.fail(f"the routine has {len(poses_data)} poses; at most {MAX_POSES}", key="poses")
        poses = tuple(self._pose(i + 1, p, hold, sided) for i, p in enumerate(poses_data))

        routine = Routine(
            title=title,
            description=self._text(data.get("description", ""), "description", sided=False, allow_empty=True),
            credit=self._text(data.get("credit", ""), "credit", sided=False, allow_empty=True),
            props=tuple(props),
            sides=tuple(sides),
            hold=hold,
            speed=speed,
            voice=voice,
            intro=self._lines(data.get("intro", []), "intro", sided=False),
            outro=self._lines(data.get("outro", []), "outro", sided=False),
            side_switch=self._lines(data.get("side_switch", []), "side_switch", sided=sided),
            poses=poses,
            chimes=self._chimes(data.get("chimes", {})),
            source=self.path,
        )
        self._check_length(routine)
        return routine

    def _pose(self, number: int, data: dict[str, Any], default_hold: float, sided: bool) -> Pose:
        raw_name = data.get("name")
        where = (number, raw_name if isinstance(raw_name, str) and raw_name.strip() else None)
        self._unknown_keys(data, _POSE_KEYS, "the pose", pose=where)
        if raw_name is None:
            raise self.fail('has no name; add name = "..." to this [[poses]] table', pose=where)
        name = self._text(raw_name, "name", where, sided=False)
        hold = self._number(data.get("hold", default_hold), "hold", MIN_HOLD, MAX_HOLD, "seconds", where)
        cues = self._cues(data.get("cues", []), where, hold, sided)
        pose = Pose(
            name=name,
            targets=self._text(data.get("targets", ""), "targets", where, sided=False, allow_empty=True),
            setup=self._lines(data.get("setup", []), "setup", where, sided=sided),
            hold=hold,
            cues=cues,
            release=self._lines(data.get("release", []), "release", where, sided=sided),
        )
        self._check_cues_fit(pose, where)
        return pose

    def _cues(self, value: Any, where, hold: float, sided: bool) -> tuple[Cue, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(f"cues must be a list of strings or {{ text = ..., at = ... }} tables, "
                            f"got {_type_name(value)} ({_show(value)})", key="cues", pose=where)
        if len(value) > MAX_LINES_PER_LIST:
            raise self.fail(f"cues has {len(value)} lines; at most {MAX_LINES_PER_LIST}", key="cues", pose=where)
        cues = []
        for item in value:
            if isinstance(item, dict):
                self._unknown_keys(item, _CUE_KEYS, "a cue", pose=where)
                if "text" not in item:
                    raise self.fail("a cue table needs text = \"...\"", key="cues", pose=where)
                text = self._text(item["text"], "cues", where, sided=sided)
                at = item.get("at")
                if at is not None:
                    at = self._number(at, "at", 0, hold, f"seconds (inside the {hold:g} s hold)", where)
                cues.append(Cue(text, at))
            else:
                cues.append(Cue(self._text(item, "cues", where, sided=sided)))
        return tuple(cues)

    def _check_cues_fit(self, pose: Pose, where) -> None:
        """Reject cues that cannot fit the hold even at normal speed (estimated from words)."""
        if not pose.cues:
            return
        needed = sum(estimate_speech_seconds(c.text) + CUE_GAP for c in pose.cues)
        available = pose.hold - 2 * CHIME_CLEARANCE
        if needed > available:
            raise self.fail(
                f"{len(pose.cues)} cues need about {needed:.0f} s but the {pose.hold:g} s hold leaves "
                f"{max(available, 0):.0f} s between chimes; lengthen hold or remove cues",
                key="cues", pose=where,
            )

    def _chimes(self, value: Any) -> dict[str, Path]:
        if not isinstance(value, dict):
            raise self.fail(f"chimes must be a table [chimes], got {_type_name(value)}", key="chimes")
        self._unknown_keys(value, CHIME_KINDS, "[chimes]", table_name="chimes")
        chimes = {}
        for kind, name in value.items():
            if not isinstance(name, str) or not name.strip():
                raise self.fail(f"chimes.{kind} must be a path to a WAV file, got {_show(name)}",
                                key=kind, table="chimes")
            path = Path(name).expanduser()
            if not path.is_absolute():
                path = self.path.parent / path
            if not path.is_file():
                what = "is a folder" if path.is_dir() else "does not exist"
                raise self.fail(f"chimes.{kind}: {path} {what}; give a WAV file's path relative to "
                                "the routine file", key=kind, table="chimes")
            if not os.access(path, os.R_OK):
                raise self.fail(f"chimes.{kind}: {path} cannot be read (permission denied)",
                                key=kind, table="chimes")
            chimes[kind] = path
        return chimes

    def _check_length(self, routine: Routine) -> None:
        speech = sum(estimate_speech_seconds(t) for t in routine.intro + routine.outro)
        for pose in routine.poses:
            speech += sum(estimate_speech_seconds(t) for t in pose.setup + pose.release)
        total = routine.total_hold_seconds + speech * max(1, len(routine.sides))
        if total > MAX_SESSION_SECONDS:
            raise self.fail(f"the session would last about {total / 3600:.1f} hours; "
                            f"a routine may last at most {MAX_SESSION_SECONDS // 3600} hours")
