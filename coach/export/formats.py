"""Which format an export gets, and whether its target can be written: both checked
before any speech is synthesized, so a mistake costs nothing."""

from __future__ import annotations

from pathlib import Path

from coach.errors import UsageError
from coach.files import check_target

FORMATS = ("wav", "txt", "md", "srt", "vtt", "json")
TEXT_FORMATS = FORMATS[1:]
STDOUT = "-"
# Names people use for the same formats, as a file suffix or a --format value.
_ALIASES = {"wave": "wav", "text": "txt", "markdown": "md", "webvtt": "vtt"}


def pick_format(output: str, fmt: str | None = None) -> str:
    """The export format: `fmt` when given, else from the file suffix; `-` (stdout) defaults to txt."""
    if fmt is not None:
        name = _normalise(fmt)
        if name not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    elif output == STDOUT:
        name = "txt"
    else:
        suffix = Path(output).suffix
        name = _normalise(suffix)
        if name not in FORMATS:
            what = f"suffix {suffix!r}" if suffix else "no suffix"
            raise UsageError(f"cannot tell the format of {output!r} ({what}); name the file "
                             f"*.wav, *.txt, *.md, *.srt, *.vtt or *.json, or give --format")
    if output == STDOUT and name not in TEXT_FORMATS:
        raise UsageError(f"{name.upper()} audio cannot be written to stdout (-o -); give a file name, "
                         f"e.g. -o session.{name}")
    return name


def _normalise(name: str) -> str:
    name = name.strip().lower().lstrip(".")
    return _ALIASES.get(name, name)


def check_output(output: str, fmt: str | None = None, force: bool = False) -> str:
    """The format, after checking the target can be written; call it before building the
    session so that a file that exists (without --force) costs no synthesis."""
    name = pick_format(output, fmt)
    if output != STDOUT:
        check_target(Path(output), force=force)
    return name

