"""Finding the line of a routine file that an error is about.

tomllib gives values but not positions; `SourceLines` reads the lines again to name one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    """Where a value sits: in a pose (number, name) and maybe its cue n, in a [table], or at the top level."""

    pose: tuple[int, str | None] | None = None
    table: str | None = None
    cue: int | None = None

    def label(self, key: str) -> str:
        return f"{self.table}.{key}" if self.table else key


TOP = Place()


class SourceLines:
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

    def _region(self, place: Place) -> tuple[int, int] | None:
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

    def line(self, place: Place, key: str | None = None, needle: str | None = None) -> int | None:
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
            if place == TOP:  # an unknown table, such as [pose] or [[pose]]
                for i, name, _ in self.headers:
                    if name == key or name.startswith(key + "."):
                        return i + 1
        return start + 1 if place != TOP else None

    @staticmethod
    def _key_pattern(key: str) -> re.Pattern[str]:
        return re.compile(rf"""(^|[{{,.])\s*["']?{re.escape(key)}["']?\s*=""")
