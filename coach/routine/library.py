"""Where routines are found: the built-in ones in cues/ and the user's routine folder."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from coach.errors import RoutineNotFoundError
from coach.routine.paths import is_file

DEFAULT_ROUTINE = "leg-stretches"


def builtin_cues_dir() -> Path:
    """The shipped routines: inside the installed wheel, or the repo's cues/ when editable."""
    # A path from this file, not importlib.resources: coach is always installed as files,
    # and resources.files() imports zipfile and more (3 ms of every start).
    package = Path(__file__).resolve().parents[1]
    packaged = package / "cues"
    if packaged.is_dir():
        return packaged
    return package.parent / "cues"


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
    if is_file(Path(text)):  # a file in the current folder, named without .toml
        return Path(text)
    raise RoutineNotFoundError(
        f'no routine named "{short(text)}"{did_you_mean(text, known)}; see `coach list` for the '
        "routines there are, or give a path to a .toml file"
    )



def did_you_mean(word: str, candidates, suffix: str = "") -> str:
    """` (did you mean "a" or "b"?)` from close spellings and names containing the word; or "".
    `suffix` is added to each name shown (".toml" for files compared by their stems)."""
    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)
    folded = word.casefold()
    if not close and len(folded) >= 3:  # "stretches" for "leg-stretches"
        close = [c for c in candidates if folded in c.casefold() or c.casefold() in folded][:3]
    if not close:
        return ""
    return " (did you mean " + " or ".join(f'"{c}{suffix}"' for c in close) + "?)"


def short(text: str, limit: int = 40) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

