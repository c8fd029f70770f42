"""One error family for everything a user can cause or fix.

The CLI turns any CoachError into a single `Error: ...` line and its exit code;
anything else escaping is a bug in coach.
"""

from __future__ import annotations

from pathlib import Path


class CoachError(Exception):
    """Base for every error a user can cause or fix. `str(err)` is one line."""

    exit_code = 1


class RoutineError(CoachError):
    """A routine file that cannot be used. Knows where: file, line, pose, field."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        pose: tuple[int, str | None] | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.pose = pose
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = str(self.path)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        if self.pose is not None:
            number, name = self.pose
            where += f"pose {number}" + (f' "{name}"' if name else "") + ": "
        return one_line(where + self.message)


class RoutineNotFoundError(RoutineError):
    """No routine by that name or path."""


class ChimeError(CoachError):
    """A chime WAV that cannot be used; `kind` names the routine's [chimes] key it came from."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


class SpeechError(CoachError):
    """The text-to-speech engine is missing or failed."""


class UnknownVoiceError(SpeechError):
    """The engine has no voice of that name; `voice` is the name asked for."""

    def __init__(self, message: str, voice: str) -> None:
        super().__init__(message)
        self.voice = voice


class AudioOutputError(CoachError):
    """No sound can be played (no device, backend missing)."""

    exit_code = 3


class ExportError(CoachError):
    """An export that cannot be written."""


class OutputError(CoachError):
    """A command's output cannot be written: a full disk, an I/O error, a closed stdout."""


class SettingsError(CoachError):
    """A broken or invalid user settings file, or a bad value for a setting."""


class UsageError(CoachError):
    """An option value out of range or inconsistent with another (exit code 2, like click)."""

    exit_code = 2


def one_line(text: str) -> str:
    """Collapse newlines and control characters so an error is always a single line."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(cleaned.split())


def shown_name(text: str) -> str:
    """A file name as one line: as it is when every character prints, else in quotes with
    each control character escaped (a newline as \\n), so the name can still be told."""
    if text.isprintable():
        return text
    return "'" + "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text) + "'"
