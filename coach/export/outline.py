"""What a player shows besides the sound: a chapter per pose and side (plus the
introduction and the closing) and the tags. Shared by the compressed audio files and the
session page, so both list the same chapters at the same times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import coach
from coach.export.wording import ENGLISH, wording
from coach.timeline import Timeline, ordered_sides

if TYPE_CHECKING:  # coach.session pulls in the speech engine; exporting needs only its data
    from coach.session import Session

# The two chapter names that are not the routine's own words (in English; wording() gives
# them in the routine's language).
INTRO_TITLE = ENGLISH["introduction"]
OUTRO_TITLE = ENGLISH["closing"]
ARTIST = "coach"


@dataclass(frozen=True)
class Chapter:
    start: int  # samples
    end: int
    title: str
    section: int | None = None  # index into the timeline's sections; None for intro and outro


def chapters(timeline: Timeline, language: str | None = None) -> list[Chapter]:
    """Back to back from 0 to the end of the session: the introduction (when something is
    said before the first pose), one per section at its start, and the closing at the first
    outro line. Each ends where the next begins, the last at the session's end. `language`
    (the routine's, e.g. "de") names the introduction and the closing."""
    words = wording(language)
    intro_title, outro_title = words["introduction"], words["closing"]
    starts: list[tuple[int, str, int | None]] = []
    sections = timeline.sections
    if not sections or sections[0].start > 0:
        starts.append((0, intro_title, None))
    starts += [(s.start, s.label, s.index) for s in sections]
    outro = next((e.start for e in timeline.events if e.part == "outro"), None)
    if outro is not None and outro > starts[-1][0]:
        starts.append((outro, outro_title, None))
    ends = [start for start, _, _ in starts[1:]] + [timeline.length]
    return [Chapter(start, end, title, section)
            for (start, title, section), end in zip(starts, ends)]


def session_chapters(session: Session) -> list[Chapter]:
    return chapters(session.timeline, session.routine.language)


def settings_comment(session: Session) -> str:
    """The settings this audio was made with, as one line for a player's comment field."""
    options = session.options
    sides = [side for side in ordered_sides(session.routine, options.start_side) if side]
    parts = [
        f"coach {coach.__version__}",
        f"routine {session.routine.name}",
        f"speed {options.speed:g}",
        f"voice {options.voice or 'default'}",
        f"engine {options.engine}",
        f"volume {options.volume:g}",
        f"hold {options.hold:g} s" if options.hold is not None else "holds as written",
        f"countdown {options.countdown}",
    ]
    if sides:
        parts.append("sides " + ", ".join(sides))
    return " · ".join(parts)


def tags(session: Session) -> dict[str, str]:
    """Title, artist, album (the routine), credit and comment; empty values left out."""
    routine = session.routine
    found = {
        "title": routine.title,
        "artist": ARTIST,
        "album": routine.title,
        "credit": routine.credit,
        "comment": settings_comment(session),
    }
    return {key: value for key, value in found.items() if value}


def utf8_within(text: str, limit: int) -> str:
    """`text`, or as much of it as fits in `limit` bytes of UTF-8 with "…" after it (a chapter
    name for a container that keeps only so many bytes of one)."""
    if len(text.encode("utf-8")) <= limit:
        return text
    cut = text.encode("utf-8")[:limit - len("…".encode("utf-8"))].decode("utf-8", "ignore")
    return cut.rstrip() + "…"
