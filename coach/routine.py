"""Routine files: TOML in, a validated, frozen `Routine` out.

This is the only module that knows TOML routines. Every problem becomes a one-line
`RoutineError` that names the file, the line where one can be found, the pose and the
field, says what was expected and what was found, and how to fix it. Nothing else ever
escapes from loading, whatever the bytes on disk (tests/test_routine_fuzz.py).
The format is documented for people writing routines in docs/routines.md.
"""

from __future__ import annotations

import datetime
import difflib
import errno
import json
import os
import re
import stat
import string
import tomllib
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from coach.errors import RoutineError, RoutineNotFoundError

MAX_FILE_BYTES = 1024 * 1024
MAX_POSES = 100
MAX_TEXT_CHARS = 600
MAX_LINES_PER_LIST = 50
MAX_SIDES = 4
MAX_SIDE_NAME_CHARS = 40
MIN_HOLD, MAX_HOLD = 1.0, 3600.0
MIN_SPEED, MAX_SPEED = 0.5, 2.0
MAX_SESSION_SECONDS = 4 * 3600
PLACEHOLDERS = ("side", "other_side")
CHIME_KINDS = ("hold_start", "midpoint", "side_switch")
DEFAULT_HOLD = 30.0
DEFAULT_SIDES = ("right", "left")

# Rough speech length for checks made before any audio exists (espeak's default rate).
WORDS_PER_MINUTE = 175.0
# Time inside a hold that cues cannot use, per chime: a chime may ring up to 2 s and the
# timeline keeps a little quiet around it; and the gap kept between cues (the timeline uses
# the same CUE_GAP). Checks made here are estimates; the timeline has the final word.
CHIME_CLEARANCE = 2.5
CUE_GAP = 0.5

DEFAULT_ROUTINE = "leg-stretches"


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
    hold: float = DEFAULT_HOLD
    cues: tuple[Cue, ...] = ()
    release: tuple[str, ...] = ()


@dataclass(frozen=True)
class Routine:
    title: str
    poses: tuple[Pose, ...]
    description: str = ""
    credit: str = ""
    props: tuple[str, ...] = ()
    sides: tuple[str, ...] = DEFAULT_SIDES
    hold: float = DEFAULT_HOLD
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
    text = os.fspath(DEFAULT_ROUTINE if name_or_path is None else name_or_path)
    if not text.strip():
        raise RoutineNotFoundError("no routine given: name one (see `coach list`) or give a path to a .toml file")
    if os.sep in text or (os.altsep and os.altsep in text) or text.endswith(".toml"):
        return Path(text)
    known = available_routines()
    if text in known:
        return known[text]
    if _is_file(Path(text)):  # a file in the current folder, named without .toml
        return Path(text)
    raise RoutineNotFoundError(
        f'no routine named "{_short(text)}"{_did_you_mean(text, known)}; see `coach list` for the '
        "routines there are, or give a path to a .toml file"
    )


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _did_you_mean(word: str, candidates) -> str:
    """` (did you mean "a" or "b"?)` from close spellings and names containing the word; or ""."""
    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)
    folded = word.casefold()
    if not close and len(folded) >= 3:  # "stretches" for "leg-stretches"
        close = [c for c in candidates if folded in c.casefold() or c.casefold() in folded][:3]
    if not close:
        return ""
    return " (did you mean " + " or ".join(f'"{c}"' for c in close) + "?)"


# ---------------------------------------------------------------------------
# Loading

def load_routine(name_or_path: str | os.PathLike[str] | None = None) -> Routine:
    """Read and validate a routine by name (see `coach list`) or path; the built-in one by default."""
    path = resolve_routine(name_or_path)
    text = _read_text(path)
    return _Validator(path, text).routine(_parse_toml(text, path))


def load_routine_text(text: str, path: Path | str = "<text>") -> Routine:
    """Validate routine TOML given as a string (tests, tools); chime paths are relative to `path`."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise RoutineError("is over 1 MiB; a routine may be at most 1 MiB", path=path)
    text = text.removeprefix("\ufeff")
    return _Validator(Path(path), text).routine(_parse_toml(text, path))


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


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
    problem = _file_problem(path)
    if problem == _MISSING:
        hint = _did_you_mean(path.stem, available_routines()) or _did_you_mean(path.name, _siblings(path))
        raise RoutineNotFoundError(f"no such file{hint}; check the name, or see `coach list`", path=path)
    if problem == _FOLDER:
        raise RoutineError("is a folder, not a routine file; name a .toml file inside it", path=path)
    if problem:
        raise RoutineError(problem, path=path)
    try:
        # Read at most one byte past the limit: /dev/zero or a huge file must not fill memory.
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise RoutineError(_os_problem(err), path=path) from None
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
        return [p.name for p in path.parent.glob("*.toml")][:1000]
    except (OSError, ValueError):
        return []


_MISSING = "does not exist"
_FOLDER = "is a folder, not a file"


def _file_problem(path: Path) -> str | None:
    """Why `path` is not a file that can be opened, as the end of a sentence; None when it is."""
    try:
        info = os.stat(path)
    except ValueError:
        return "is not a usable path (it contains a NUL character)"
    except OSError as err:
        if err.errno == errno.ENOENT and os.path.islink(path):
            return "is a broken symbolic link (it points to a file that does not exist)"
        return _os_problem(err)
    if stat.S_ISDIR(info.st_mode):
        return _FOLDER
    return None


def _os_problem(err: OSError) -> str:
    return {
        errno.ENOENT: _MISSING,
        errno.ENOTDIR: "does not exist (part of its path is a file, not a folder)",
        errno.ELOOP: "is a symbolic link loop (links that point back to each other); fix or remove the link",
        errno.ENAMETOOLONG: "has a name too long for the file system",
        errno.EACCES: "cannot be read: permission denied; check the file's permissions",
        errno.EPERM: "cannot be read: permission denied; check the file's permissions",
        errno.EISDIR: _FOLDER,
    }.get(err.errno, f"cannot be read: {err.strerror or err}")


# ---------------------------------------------------------------------------
# Validation

_TOP_KEYS = ("title", "description", "credit", "props", "intro", "outro", "side_switch",
             "defaults", "chimes", "poses")
_DEFAULT_KEYS = ("hold", "sides", "speed", "voice")
_POSE_KEYS = ("name", "targets", "setup", "hold", "cues", "release")
_CUE_KEYS = ("text", "at")
_TOP_ONLY = ("title", "description", "credit", "props", "intro", "outro", "side_switch")


def _type_name(value: Any) -> str:
    if isinstance(value, (datetime.date, datetime.time)):
        return "a date or time"
    return {
        str: "text", int: "a whole number", float: "a number", bool: "true/false",
        list: "a list", dict: "a table",
    }.get(type(value), type(value).__name__)


def _num(value: float) -> str:
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"a {len(str(abs(value)))}-digit number"
    return f"{value:g}"


def _toml_repr(value: Any, depth: int = 0) -> str:
    """A value as it would look in the file, to show what was found."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _num(value)
    if isinstance(value, str):
        return json.dumps(value[:60], ensure_ascii=False)
    if depth > 2:
        return "..."
    if isinstance(value, list):
        return "[" + ", ".join(_toml_repr(v, depth + 1) for v in value[:4]) + (", ...]" if len(value) > 4 else "]")
    if isinstance(value, dict):
        items = list(value.items())[:4]
        return "{ " + ", ".join(f"{_short(k, 20)} = {_toml_repr(v, depth + 1)}" for k, v in items) + " }"
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return _short(repr(value))


def _found(value: Any) -> str:
    shown = _toml_repr(value)
    return f"{_type_name(value)} {shown if len(shown) <= 50 else shown[:47] + '...'}"


def _quoted_number(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class _Place:
    """Where a value sits: in a pose (number, name) and maybe its cue n, in a [table], or at the top level."""

    pose: tuple[int, str | None] | None = None
    table: str | None = None
    cue: int | None = None

    def label(self, key: str) -> str:
        return f"{self.table}.{key}" if self.table else key


_TOP = _Place()


class _Source:
    """Finds the line a key or value was written on, so an error can name it.

    tomllib gives values but not positions, so this reads the lines again: headers
    ([defaults], [[poses]]) split the file into regions, and a key is looked for in its own
    region. Best effort: a wrong guess is worse than none, so it gives up rather than guess
    outside the region.
    """

    _HEADER = re.compile(r"""^\s*(\[\[?)\s*([\w.\-"' ]+?)\s*\]\]?\s*(?:#.*)?$""")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: list[tuple[int, str, bool]] = []  # (line index, name, is [[array]])
        for i, line in enumerate(self.lines):
            if match := self._HEADER.match(line):
                name = re.sub(r"""[\s"']""", "", match[2])
                self.headers.append((i, name, match[1] == "[["))

    def _region(self, place: _Place) -> tuple[int, int] | None:
        if place.pose is not None:
            starts = [i for i, name, is_array in self.headers if name == "poses" and is_array]
            if place.pose[0] - 1 >= len(starts):
                return None
            start = starts[place.pose[0] - 1]
            end = next((i for i, name, _ in self.headers if i > start and not name.startswith("poses.")),
                       len(self.lines))
            cues = [i for i, name, is_array in self.headers if start < i < end and name == "poses.cues" and is_array]
            if place.cue is not None and place.cue <= len(cues):  # cues written as [[poses.cues]] tables
                cue_start = cues[place.cue - 1]
                return cue_start, next((i for i, _, _ in self.headers if i > cue_start), len(self.lines))
            return start, end
        if place.table is not None:
            for i, name, is_array in self.headers:
                if name == place.table and not is_array:
                    return i, next((j for j, _, _ in self.headers if j > i), len(self.lines))
            return None
        return 0, self.headers[0][0] if self.headers else len(self.lines)

    def line(self, place: _Place, key: str | None = None, needle: str | None = None) -> int | None:
        region = self._region(place)
        if region is None:
            if place.table and key:  # e.g. defaults = { hold = 5 } or defaults.hold = 5
                key_pattern = self._key_pattern(key)
                for i, text in enumerate(self.lines):
                    if place.table in text and key_pattern.search(text):
                        return i + 1
            return None
        start, end = region
        if needle:
            for i in range(start, end):
                if needle in self.lines[i]:
                    return i + 1
        if key:
            key_pattern = self._key_pattern(key)
            for i in range(start, end):
                if key_pattern.search(self.lines[i]):
                    return i + 1
            if place == _TOP:  # an unknown table, such as [pose] or [[pose]]
                for i, name, _ in self.headers:
                    if name == key or name.startswith(key + "."):
                        return i + 1
        return start + 1 if place != _TOP else None

    @staticmethod
    def _key_pattern(key: str) -> re.Pattern[str]:
        return re.compile(rf"""(^|[{{,.])\s*["']?{re.escape(key)}["']?\s*=""")


def _clean(value: str) -> tuple[str, str | None]:
    """Whitespace (line breaks, tabs, non-breaking spaces) becomes single spaces; a control
    character is a problem, returned as its code point."""
    for ch in value:
        if not ch.isspace() and unicodedata.category(ch) in ("Cc", "Cs"):
            return value, f"U+{ord(ch):04X}"
    return " ".join(value.split()), None


class _Validator:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self._source: _Source | None = None  # only built when an error needs a line number

    def fail(self, message: str, place: _Place = _TOP, key: str | None = None,
             needle: str | None = None) -> RoutineError:
        if self._source is None:
            self._source = _Source(self.text)
        line = self._source.line(place, key, needle)
        return RoutineError(message, path=self.path, line=line, pose=place.pose, field=key)

    def _unknown_keys(self, table: dict[str, Any], allowed: tuple[str, ...], where: str,
                      place: _Place = _TOP) -> None:
        for key in table:
            if key in allowed:
                continue
            hint = _did_you_mean(key, allowed) if len(key) < 100 else ""
            if hint:
                pass
            elif key in _TOP_ONLY and place != _TOP:
                hint = (f" ({key} belongs at the top of the file, before the first [table]: "
                        "TOML puts every key below a [[poses]] line into that pose)")
            elif key == "hold" and place.table != "defaults":
                hint = " (hold belongs in [defaults] or in a [[poses]] table)"
            elif key in _POSE_KEYS and place.pose is None:
                hint = f" ({key} belongs in a [[poses]] table; is a [[poses]] line missing above it?)"
            elif key in _DEFAULT_KEYS and place.table != "defaults":
                hint = f" ({key} belongs in [defaults])"
            else:
                hint = f" (allowed: {', '.join(allowed)})"
            raise self.fail(f'unknown key "{_short(key)}" in {where}{hint}', place, key)

    # -- typed values --------------------------------------------------------------
    def _text(self, value: Any, key: str, place: _Place = _TOP, *, label: str | None = None,
              spoken: bool = False, no_side_because: str | None = None, allow_empty: bool = False,
              limit: int = MAX_TEXT_CHARS) -> str:
        """A checked text. Spoken texts may hold {side}/{other_side} unless `no_side_because`."""
        label = label or place.label(key)
        if not isinstance(value, str):
            raise self.fail(f"{label} must be text in quotes, got {_found(value)}", place, key)
        text, control = _clean(value)
        # The start of a plain text is usually in the file as written: it finds the exact line.
        needle = value[:25] if len(value.strip()) >= 8 and value[:25].isprintable() and '"' not in value[:25] \
            and "\\" not in value[:25] else None
        if control:
            raise self.fail(f"{label} contains a control character ({control}); write plain text "
                            "(line breaks and tabs are fine)", place, key, needle)
        if not text and not allow_empty:
            what = "the words to speak" if spoken else "some text"
            raise self.fail(f"{label} is empty; write {what} or remove the line", place, key)
        if len(text) > limit:
            raise self.fail(f"{label} is {len(text)} characters long; keep it under {limit}"
                            + (" (split it into several lines)" if spoken else ""), place, key, needle)
        if spoken:
            self._check_placeholders(text, label, key, place, no_side_because, needle)
        return text

    def _check_placeholders(self, text: str, label: str, key: str, place: _Place,
                            no_side_because: str | None, needle: str | None) -> None:
        try:
            parts = list(string.Formatter().parse(text))
        except ValueError:
            raise self.fail(f"{label} has an unmatched brace in {_toml_repr(text)}; write {{side}} for the "
                            "side's name, or {{ and }} for a brace to keep", place, key, needle) from None
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            if name not in PLACEHOLDERS:
                hint = _did_you_mean(name.strip(), PLACEHOLDERS).replace('"side"', "{side}") \
                    .replace('"other_side"', "{other_side}")
                raise self.fail(f"{label} has an unknown placeholder {_short(shown)}{hint}; the placeholders "
                                "are {side} and {other_side} (write {{ and }} for a brace to keep)",
                                place, key, needle=shown)
            if spec or conversion:
                raise self.fail(f"{label} has {_short(shown)}; a placeholder takes no format, write {{{name}}}",
                                place, key, needle=shown)
            if no_side_because:
                raise self.fail(f"{label} uses {{{name}}}, but {no_side_because}", place, key, needle=shown)

    def _list(self, value: Any, key: str, place: _Place, what: str) -> list[Any]:
        """A list of items, or a single item standing for a list of one."""
        if isinstance(value, (str, dict)):
            return [value]
        if not isinstance(value, list):
            raise self.fail(f"{place.label(key)} must be {what}, got {_found(value)}", place, key)
        if len(value) > MAX_LINES_PER_LIST:
            raise self.fail(f"{place.label(key)} has {len(value)} items; at most {MAX_LINES_PER_LIST}",
                            place, key)
        return value

    def _lines(self, value: Any, key: str, place: _Place = _TOP, *,
               no_side_because: str | None = None) -> tuple[str, ...]:
        items = self._list(value, key, place, "text in quotes, or a list of texts")
        numbered = isinstance(value, list) and len(items) > 1
        return tuple(
            self._text(item, key, place, label=f"{place.label(key)} line {n}" if numbered else None,
                       spoken=True, no_side_because=no_side_because)
            for n, item in enumerate(items, 1)
        )

    def _number(self, value: Any, key: str, place: _Place, low: float, high: float, unit: str,
                label: str | None = None) -> float:
        label = label or place.label(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = " (remove the quotes)" if _quoted_number(value) else ""
            raise self.fail(f"{label} must be a number{' of ' + unit if unit else ''}, got {_found(value)}{hint}",
                            place, key)
        if not low <= value <= high:  # NaN fails every comparison, so it lands here too
            raise self.fail(f"{label} must be between {_num(low)} and {_num(high)}{' ' + unit if unit else ''}, "
                            f"got {_num(value)}", place, key)
        return float(value)

    # -- the routine ----------------------------------------------------------------
    def routine(self, data: dict[str, Any]) -> Routine:
        if not data:
            raise self.fail("the routine is empty: it needs a title and at least one [[poses]] table "
                            "(see docs/routines.md)")
        self._unknown_keys(data, _TOP_KEYS, "the routine")

        defaults_place = _Place(table="defaults")
        defaults = data.get("defaults", {})
        if not isinstance(defaults, dict):
            raise self.fail(f"defaults must be a table, written [defaults] on its own line, got {_found(defaults)}",
                            key="defaults")
        self._unknown_keys(defaults, _DEFAULT_KEYS, "[defaults]", defaults_place)
        sides = self._sides(defaults.get("sides", list(DEFAULT_SIDES)), defaults_place)
        no_sides = None if sides else "this routine has no sides (defaults.sides is empty)"
        hold = self._number(defaults.get("hold", DEFAULT_HOLD), "hold", defaults_place,
                            MIN_HOLD, MAX_HOLD, "seconds")
        speed = defaults.get("speed")
        if speed is not None:
            speed = self._number(speed, "speed", defaults_place, MIN_SPEED, MAX_SPEED, "")
        voice = defaults.get("voice")
        if voice is not None:
            voice = self._text(voice, "voice", defaults_place, limit=200)

        if "title" not in data:
            raise self.fail('the routine has no title; add a line like title = "Evening stretch" at the top')
        title = self._text(data["title"], "title", limit=200)
        description = self._text(data.get("description", ""), "description", allow_empty=True)
        credit = self._text(data.get("credit", ""), "credit", allow_empty=True)
        props_list = self._list(data.get("props", []), "props", _TOP, 'a list of texts like ["strap"]')
        props = tuple(self._text(p, "props", label=f"props item {n}" if len(props_list) > 1 else None, limit=100)
                      for n, p in enumerate(props_list, 1))

        before_sides = "the intro is spoken before any side begins"
        after_sides = "the outro is spoken after both sides are done"
        intro = self._lines(data.get("intro", []), "intro", no_side_because=before_sides)
        outro = self._lines(data.get("outro", []), "outro", no_side_because=after_sides)
        side_switch = self._lines(data.get("side_switch", []), "side_switch", no_side_because=no_sides)

        poses_data = data.get("poses")
        if poses_data is None or poses_data == []:
            raise self.fail('the routine has no poses: add a [[poses]] table with a line like name = "Leg up"')
        if isinstance(poses_data, dict):
            raise self.fail("poses must be written [[poses]] with double brackets, once above each pose; "
                            "found [poses]", key="poses")
        if not isinstance(poses_data, list) or not all(isinstance(p, dict) for p in poses_data):
            raise self.fail(f"poses must be [[poses]] tables, got {_found(poses_data)}", key="poses")
        if len(poses_data) > MAX_POSES:
            raise self.fail(f"the routine has {len(poses_data)} poses; at most {MAX_POSES}", key="poses")
        poses = tuple(self._pose(n, p, hold, speed or 1.0, no_sides) for n, p in enumerate(poses_data, 1))

        routine = Routine(
            title=title, poses=poses, description=description, credit=credit, props=props,
            sides=sides, hold=hold, speed=speed, voice=voice, intro=intro, outro=outro,
            side_switch=side_switch, chimes=self._chimes(data.get("chimes", {})), source=self.path,
        )
        self._check_length(routine)
        return routine

    def _sides(self, value: Any, place: _Place) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(f'defaults.sides must be a list of side names like ["right", "left"] (or [] for '
                            f"none), got {_found(value)}", place, "sides")
        if len(value) > MAX_SIDES:
            raise self.fail(f"defaults.sides has {len(value)} sides; at most {MAX_SIDES}", place, "sides")
        sides = tuple(self._text(s, "sides", place, label=f"defaults.sides item {n}", limit=MAX_SIDE_NAME_CHARS)
                      for n, s in enumerate(value, 1))
        if len(set(sides)) != len(sides):
            raise self.fail(f"defaults.sides names a side twice, got {_toml_repr(list(sides))}; "
                            "each side once, e.g. [\"right\", \"left\"]", place, "sides")
        return sides

    def _pose(self, number: int, data: dict[str, Any], default_hold: float, speed: float,
              no_sides: str | None) -> Pose:
        raw_name = data.get("name")
        shown_name = _short(raw_name) if isinstance(raw_name, str) and raw_name.strip() else None
        place = _Place(pose=(number, shown_name))
        self._unknown_keys(data, _POSE_KEYS, "the pose", place)
        if raw_name is None:
            raise self.fail('has no name; add a line like name = "Leg up" to this [[poses]] table', place)
        name = self._text(raw_name, "name", place, limit=100)
        hold = self._number(data.get("hold", default_hold), "hold", place, MIN_HOLD, MAX_HOLD, "seconds")
        pose = Pose(
            name=name,
            targets=self._text(data.get("targets", ""), "targets", place, allow_empty=True),
            setup=self._lines(data.get("setup", []), "setup", place, no_side_because=no_sides),
            hold=hold,
            cues=self._cues(data.get("cues", []), place, hold, no_sides),
            release=self._lines(data.get("release", []), "release", place, no_side_because=no_sides),
        )
        self._check_cues_fit(pose, place, speed)
        return pose

    def _cues(self, value: Any, place: _Place, hold: float, no_sides: str | None) -> tuple[Cue, ...]:
        items = self._list(value, "cues", place, 'a list of texts, or of tables like { text = "...", at = 10 }')
        numbered = isinstance(value, list) and len(items) > 1
        cues = []
        for n, item in enumerate(items, 1):
            label = f"cue {n}" if numbered else "cue"
            if not isinstance(item, dict):
                cues.append(Cue(self._text(item, "cues", place, label=label, spoken=True, no_side_because=no_sides)))
                continue
            cue_place = _Place(pose=place.pose, cue=n)
            self._unknown_keys(item, _CUE_KEYS, label, cue_place)
            if "text" not in item:
                raise self.fail(f'{label} has no text; write it as {{ text = "...", at = 10 }}', cue_place, "cues")
            text = self._text(item["text"], "text", cue_place, label=label, spoken=True, no_side_because=no_sides)
            at = item.get("at")
            if at is not None:
                at = self._number(at, "at", cue_place, 0, hold, "seconds", label=f"{label}: at")
                if at >= hold:
                    raise self.fail(f"{label}: at must be a second inside the {_num(hold)} s hold, from 0 "
                                    f"to under {_num(hold)}, got {_num(at)}", cue_place, "at")
            cues.append(Cue(text, at))
        return tuple(cues)

    def _check_cues_fit(self, pose: Pose, place: _Place, speed: float) -> None:
        """Reject cues that cannot fit the hold even at the routine's speed (estimated from words)."""
        if not pose.cues:
            return
        needed = sum(estimate_speech_seconds(c.text, speed) + CUE_GAP for c in pose.cues)
        available = pose.hold - 2 * CHIME_CLEARANCE
        if needed > available:
            raise self.fail(
                f"{len(pose.cues)} cues need about {needed:.0f} s but the {_num(pose.hold)} s hold leaves "
                f"about {max(available, 0):.0f} s between its chimes; lengthen hold or remove cues",
                place, "cues",
            )

    def _chimes(self, value: Any) -> dict[str, Path]:
        place = _Place(table="chimes")
        if not isinstance(value, dict):
            raise self.fail(f"chimes must be a table, written [chimes] on its own line, got {_found(value)}",
                            key="chimes")
        self._unknown_keys(value, CHIME_KINDS, "[chimes]", place)
        chimes = {}
        for kind, name in value.items():
            label = f"chimes.{kind}"
            name = self._text(name, kind, place, label=label, limit=1000)
            try:
                path = Path(name).expanduser()
            except RuntimeError:  # ~someone with no such user
                raise self.fail(f"{label}: cannot find the home folder in {_toml_repr(name)}", place, kind) from None
            if not path.is_absolute():
                path = self.path.parent / path
            problem = _file_problem(path)
            if not problem and not _is_file(path):  # a device or pipe would never end
                problem = "is not a regular file"
            if problem:
                raise self.fail(f"{label}: {_short(str(path), 120)} {problem}; give the path of a WAV file, "
                                "relative to the routine file's folder", place, kind)
            if not os.access(path, os.R_OK):
                raise self.fail(f"{label}: {_short(str(path), 120)} cannot be read (permission denied); "
                                "check the file's permissions", place, kind)
            chimes[kind] = path
        return chimes

    def _check_length(self, routine: Routine) -> None:
        speed = routine.speed or 1.0

        def say(lines) -> float:
            return sum(estimate_speech_seconds(t, speed) for t in lines)

        sides = max(1, len(routine.sides))
        per_side = sum(p.hold + say(p.setup) + say(p.release) for p in routine.poses)
        total = say(routine.intro) + say(routine.outro) + sides * per_side + (sides - 1) * say(routine.side_switch)
        if total > MAX_SESSION_SECONDS:
            raise self.fail(f"the session would last about {total / 3600:.1f} hours "
                            f"({len(routine.poses)} poses x {sides} sides); a routine may last at most "
                            f"{MAX_SESSION_SECONDS // 3600} hours: shorten holds or remove poses")
