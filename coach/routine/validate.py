"""From parsed TOML to a checked `Routine`: every problem is one `RoutineError` that names
the file, the line where one can be found, the pose and the field, says what was expected
and what was found, and how to fix it. The format is documented in docs/routines.md.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import string
import unicodedata
from pathlib import Path
from typing import Any

from coach.errors import RoutineError
from coach.routine.library import did_you_mean, short
from coach.routine.model import (
    CHIME_CLEARANCE,
    CHIME_KINDS,
    CUE_GAP,
    DEFAULT_HOLD,
    DEFAULT_SETTLE,
    DEFAULT_SIDES,
    MAX_HOLD,
    MAX_SETTLE,
    MAX_SPEED,
    MIN_HOLD,
    MIN_SPEED,
    PLACEHOLDERS,
    Cue,
    Pose,
    Routine,
    estimate_speech_seconds,
    fill_placeholders,
)
from coach.routine.paths import file_problem, is_file
from coach.routine.where import TOP, Place, SourceLines

MAX_POSES = 100
MAX_TEXT_CHARS = 600
MAX_LINES_PER_LIST = 50
MAX_SIDES = 4
MAX_SIDE_NAME_CHARS = 40
MAX_SESSION_SECONDS = 4 * 3600

_TOP_KEYS = ("title", "description", "credit", "props", "language", "intro", "outro", "side_switch",
             "defaults", "chimes", "poses")
_DEFAULT_KEYS = ("hold", "sides", "speed", "voice", "settle", "min_hold", "max_hold")
_POSE_KEYS = ("name", "targets", "setup", "hold", "cues", "release", "sides", "group", "side_switch",
              "rest", "chimes", "settle", "min_hold", "max_hold")
_CUE_KEYS = ("text", "at", "detail")
_TOP_ONLY = ("title", "description", "credit", "props", "language", "intro", "outro")
# An espeak-ng language code: "de", "fr", "en-gb", "pt-br", "cmn".
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*")


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
        return "{ " + ", ".join(f"{short(k, 20)} = {_toml_repr(v, depth + 1)}" for k, v in items) + " }"
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return short(repr(value))


def _found(value: Any) -> str:
    shown = _toml_repr(value)
    if isinstance(value, bool):  # "got true", not "got true/false true"
        return shown
    return f"{_type_name(value)} {shown if len(shown) <= 50 else shown[:47] + '...'}"


def _quoted_number(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True



def _clean(value: str) -> tuple[str, str | None]:
    """Whitespace (line breaks, tabs, non-breaking spaces) becomes single spaces; a control
    character is a problem, returned as its code point."""
    for ch in value:
        if not ch.isspace() and unicodedata.category(ch) in ("Cc", "Cs"):
            return value, f"U+{ord(ch):04X}"
    return " ".join(value.split()), None


class Validator:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self._source: SourceLines | None = None  # only built when an error needs a line number

    def fail(self, message: str, place: Place = TOP, key: str | None = None,
             needle: str | None = None) -> RoutineError:
        if self._source is None:
            self._source = SourceLines(self.text)
        line = self._source.line(place, key, needle)
        return RoutineError(message, path=self.path, line=line, pose=place.pose, field=key)

    def _unknown_keys(self, table: dict[str, Any], allowed: tuple[str, ...], where: str,
                      place: Place = TOP) -> None:
        for key in table:
            if key in allowed:
                continue
            # A key that is right elsewhere is told where it belongs; a spelling suggestion
            # ("title" in a pose: did you mean "settle"?) would send the author the wrong way.
            in_pose = place.pose is not None
            if place.cue is not None and key in _POSE_KEYS + _DEFAULT_KEYS:
                hint = f" ({key} belongs to the pose, not to one of its cues: a cue has text, at and detail)"
            elif key in _TOP_ONLY and place != TOP:
                below = "a [[poses]] line into that pose" if in_pose else "a [table] line into that table"
                hint = (f" ({key} belongs at the top of the file, before the first [table]: "
                        f"TOML puts every key below {below})")
            elif key in _DEFAULT_KEYS and key in _POSE_KEYS and place.table != "defaults" and not in_pose:
                hint = f" ({key} belongs in [defaults] or in a [[poses]] table)"
            elif key in _POSE_KEYS and not in_pose and key not in allowed:
                hint = f" ({key} belongs in a [[poses]] table; is a [[poses]] line missing above it?)"
            elif key in _DEFAULT_KEYS and place.table != "defaults":
                hint = f" ({key} belongs in [defaults])"
            else:
                hint = did_you_mean(key, allowed) if len(key) < 100 else ""
                hint = hint or f" (allowed: {', '.join(allowed)})"
            raise self.fail(f'unknown key "{short(key)}" in {where}{hint}', place, key)

    # -- typed values --------------------------------------------------------------
    def _text(self, value: Any, key: str, place: Place = TOP, *, label: str | None = None,
              spoken: bool = False, no_side_because: str | None = None, allow_empty: bool = False,
              limit: int = MAX_TEXT_CHARS, sides: tuple[str, ...] = ()) -> str:
        """A checked text. Spoken texts may hold {side}/{other_side} unless `no_side_because`,
        and {side:form|form} with a form for each of `sides` (where the text is spoken)."""
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
            # Only a line that may be left out can be removed (a title, a pose's name cannot).
            required = key in ("title", "name")
            raise self.fail(f"{label} is empty; write {what}{'' if required else ' or remove the line'}",
                            place, key)
        if len(text) > limit:
            raise self.fail(f"{label} is {len(text)} characters long; keep it under {limit}"
                            + (" (split it into several lines)" if spoken else ""), place, key, needle)
        if spoken:
            self._check_placeholders(text, label, key, place, no_side_because, needle, sides)
            if not any(ch.isalnum() for ch in text) and "{" not in text:
                # Only signs ("...", "—", an invisible space): no voice makes a sound of it.
                raise self.fail(f"{label} has nothing to say ({_visible(short(text))}: "
                                "no letter or digit); write words the voice can speak, or remove the line",
                                place, key, needle)
        return text

    def _check_placeholders(self, text: str, label: str, key: str, place: Place,
                            no_side_because: str | None, needle: str | None, sides: tuple[str, ...] = ()) -> None:
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
                hint = did_you_mean(name.strip(), PLACEHOLDERS).replace('"side"', "{side}") \
                    .replace('"other_side"', "{other_side}")
                raise self.fail(f"{label} has an unknown placeholder {short(shown)}{hint}; the placeholders "
                                "are {side} and {other_side} (write {{ and }} for a brace to keep)",
                                place, key, needle=shown)
            if conversion:
                raise self.fail(f"{label} has {short(shown)}; write {{{name}}}, or {{{name}:form|form}} with "
                                "a form of the word for each side", place, key, needle=shown)
            if no_side_because:
                raise self.fail(f"{label} uses {{{name}}}, but {no_side_because}", place, key, needle=shown)
            if name == "other_side" and len(sides) == 1 and place.pose is not None:
                # With one side, {other_side} would be that same side ("face the front, not the front").
                raise self.fail(f"{label} uses {{other_side}}, but this pose is done on one side only "
                                f"({sides[0]}), so there is no other side; write the words instead, or give "
                                "the pose a second side", place, key, needle=shown)
            if spec:
                self._check_side_forms(shown, spec, sides, label, key, place)

    def _check_side_forms(self, shown: str, spec: str, sides: tuple[str, ...], label: str, key: str,
                          place: Place) -> None:
        """{side:rechte|linke}: one form per side, in the order the sides are written."""
        forms = spec.split("|")
        example = "{side:" + "|".join(sides) + "}"
        if any(not form.strip() or "{" in form or "}" in form for form in forms):
            raise self.fail(f"{label} has {short(shown)} with an empty or braced form; write a word for each "
                            f"side, e.g. {example}", place, key, needle=shown)
        if len(forms) != len(sides):
            raise self.fail(f"{label} has {short(shown)} with {_forms(len(forms))}, but it is spoken for "
                            f"{len(sides)} sides ({', '.join(sides)}); give one form per side in that order, "
                            f"e.g. {example}", place, key, needle=shown)

    def _list(self, value: Any, key: str, place: Place, what: str) -> list[Any]:
        """A list of items, or a single item standing for a list of one."""
        if isinstance(value, (str, dict)):
            return [value]
        if not isinstance(value, list):
            raise self.fail(f"{place.label(key)} must be {what}, got {_found(value)}", place, key)
        if len(value) > MAX_LINES_PER_LIST:
            raise self.fail(f"{place.label(key)} has {len(value)} items; at most {MAX_LINES_PER_LIST}",
                            place, key)
        return value

    def _lines(self, value: Any, key: str, place: Place = TOP, *,
               no_side_because: str | None = None, sides: tuple[str, ...] = ()) -> tuple[str, ...]:
        items = self._list(value, key, place, "text in quotes, or a list of texts")
        numbered = isinstance(value, list) and len(items) > 1
        return tuple(
            self._text(item, key, place, label=f"{place.label(key)} line {n}" if numbered else None,
                       spoken=True, no_side_because=no_side_because, sides=sides)
            for n, item in enumerate(items, 1)
        )

    def _number(self, value: Any, key: str, place: Place, low: float, high: float, unit: str,
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

        defaults_place = Place(table="defaults")
        defaults = data.get("defaults", {})
        if not isinstance(defaults, dict):
            raise self.fail(f"defaults must be a table, written [defaults] on its own line, got {_found(defaults)}",
                            key="defaults")
        self._unknown_keys(defaults, _DEFAULT_KEYS, "[defaults]", defaults_place)
        sides = self._sides(defaults.get("sides", list(DEFAULT_SIDES)), defaults_place)
        hold = self._number(defaults.get("hold", DEFAULT_HOLD), "hold", defaults_place,
                            MIN_HOLD, MAX_HOLD, "seconds")
        settle = self._number(defaults.get("settle", DEFAULT_SETTLE), "settle", defaults_place,
                              0, MAX_SETTLE, "seconds")
        min_hold, max_hold = self._hold_bounds(defaults, defaults_place)
        speed = defaults.get("speed")
        if speed is not None:
            speed = self._number(speed, "speed", defaults_place, MIN_SPEED, MAX_SPEED, "")
        voice = defaults.get("voice")
        if voice is not None:
            voice = self._text(voice, "voice", defaults_place, limit=200)

        language = data.get("language")
        if language is not None:
            language = self._language(language)

        chimes = data.get("chimes")
        if isinstance(chimes, dict):  # a title written below [chimes] is in that table: say so first
            self._unknown_keys(chimes, CHIME_KINDS, "[chimes]", Place(table="chimes"))
        if "title" not in data:
            raise self.fail('the routine has no title; add a line like title = "Evening stretch" at the top')
        title = self._text(data["title"], "title", limit=200)
        description = self._text(data.get("description", ""), "description", allow_empty=True)
        credit = self._text(data.get("credit", ""), "credit", allow_empty=True)
        props_list = self._list(data.get("props", []), "props", TOP, 'a list of texts like ["strap"]')
        props = tuple(self._text(p, "props", label=f"props item {n}" if len(props_list) > 1 else None, limit=100)
                      for n, p in enumerate(props_list, 1))

        before_sides = "the intro is spoken before any side begins"
        after_sides = "the outro is spoken after both sides are done"
        # The intro and outro have no placeholders (checked), so they are kept as spoken: {{ and }}
        # become the brace itself, as they do in the texts whose sides are filled in.
        intro = tuple(fill_placeholders(line, None, None) for line in
                      self._lines(data.get("intro", []), "intro", no_side_because=before_sides))
        outro = tuple(fill_placeholders(line, None, None) for line in
                      self._lines(data.get("outro", []), "outro", no_side_because=after_sides))

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
        poses = tuple(self._pose(n, p, hold, speed or 1.0, sides) for n, p in enumerate(poses_data, 1))
        sided = sides or any(p.sides or (p.sides is None and not p.rest) for p in poses)
        no_sides = None if sided else "this routine has no sides (defaults.sides is empty)"
        side_switch = self._lines(data.get("side_switch", []), "side_switch", no_side_because=no_sides,
                                  sides=sides)

        routine = Routine(
            title=title, poses=poses, description=description, credit=credit, props=props,
            sides=sides, hold=hold, speed=speed, voice=voice, intro=intro, outro=outro,
            side_switch=side_switch, chimes=self._chimes(data.get("chimes", {})), source=self.path,
            settle=settle, min_hold=min_hold, max_hold=max_hold, language=language,
        )
        for number, pose in enumerate(poses, 1):
            low, high = routine.hold_bounds(pose)
            place = Place(pose=(number, short(pose.name)))
            if low > high:  # only when both are written: a default maximum is never below the minimum
                raise self.fail(f"min_hold ({_num(low)} s) is above max_hold ({_num(high)} s); "
                                "make min_hold the smaller", place, "min_hold")
            if pose.rest:
                continue
            # A hold outside its own written bounds: --minutes would never give the pose the hold written.
            if (pose.max_hold is not None or routine.max_hold is not None) and pose.hold > high:
                raise self.fail(f"hold ({_num(pose.hold)} s) is above max_hold ({_num(high)} s), the longest "
                                "--minutes may make it; raise max_hold or shorten the hold", place, "hold")
            if (pose.min_hold is not None or routine.min_hold is not None) and pose.hold < low:
                raise self.fail(f"hold ({_num(pose.hold)} s) is below min_hold ({_num(low)} s), the shortest "
                                "--minutes may make it; lower min_hold or lengthen the hold", place, "hold")
        self._check_switch_forms(routine)
        self._check_length(routine)
        return routine

    def _check_switch_forms(self, routine: Routine) -> None:
        """The routine's side_switch lines are checked against defaults.sides; a pose with
        other sides that speaks them must have as many sides as their {side:...} has forms."""
        for number, pose in enumerate(routine.poses, 1):
            sides = routine.sides_of(pose)
            if pose.side_switch is not None or len(sides) < 2 or sides == routine.sides:
                continue
            for n, line in enumerate(routine.side_switch, 1):
                for _, name, spec, _ in string.Formatter().parse(line):
                    if spec and len(spec.split("|")) != len(sides):
                        label = f"side_switch line {n}" if len(routine.side_switch) > 1 else "side_switch"
                        raise self.fail(f"{label} has {{{name}:{short(spec)}}} with {_forms(len(spec.split('|')))}, "
                                        f"but pose {number} \"{short(pose.name)}\" is done on {len(sides)} sides ({', '.join(sides)}); "
                                        "give that pose a side_switch of its own", key="side_switch",
                                        needle="{" + name + ":")

    def _sides(self, value: Any, place: Place) -> tuple[str, ...]:
        label = place.label("sides")
        if not isinstance(value, list):
            raise self.fail(f'{label} must be a list of side names like ["right", "left"] (or [] for '
                            f"none), got {_found(value)}", place, "sides")
        if len(value) > MAX_SIDES:
            raise self.fail(f"{label} has {len(value)} sides; at most {MAX_SIDES}", place, "sides")
        sides = tuple(self._text(s, "sides", place, label=f"{label} item {n}", limit=MAX_SIDE_NAME_CHARS)
                      for n, s in enumerate(value, 1))
        if len(set(sides)) != len(sides):
            raise self.fail(f"{label} names a side twice, got {_toml_repr(list(sides))}; "
                            "each side once, e.g. [\"right\", \"left\"]", place, "sides")
        # --side and --from find a side in any case: two that differ only in case are one to them.
        seen: dict[str, str] = {}
        for side in sides:
            other = seen.setdefault(side.casefold(), side)
            if other != side:
                raise self.fail(f"{label} names a side twice: {_toml_repr(other)} and {_toml_repr(side)} differ "
                                "only in case, and --side and --from take either for both; "
                                "give each side a name of its own", place, "sides")
        return sides

    def _flag(self, value: Any, key: str, place: Place, label: str | None = None) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"{label or place.label(key)} must be true or false (no quotes), got {_found(value)}",
                            place, key)
        return value

    def _hold_bounds(self, table: dict[str, Any], place: Place) -> tuple[float | None, float | None]:
        bounds = []
        for key in ("min_hold", "max_hold"):
            value = table.get(key)
            bounds.append(None if value is None else
                          self._number(value, key, place, MIN_HOLD, MAX_HOLD, "seconds"))
        low, high = bounds
        if low is not None and high is not None and low > high:
            raise self.fail(f"{place.label('min_hold')} ({_num(low)} s) is above {place.label('max_hold')} "
                            f"({_num(high)} s); make min_hold the smaller", place, "min_hold")
        return low, high

    def _language(self, value: Any) -> str:
        text = self._text(value, "language", limit=40)
        code = text.strip().lower().replace("_", "-")
        if not _LANGUAGE.fullmatch(code):
            raise self.fail(f"language must be a language code like \"de\", \"fr\" or \"en-gb\" "
                            f"(`coach voices` lists them), got {_toml_repr(text)}", key="language")
        return code

    def _pose(self, number: int, data: dict[str, Any], default_hold: float, speed: float,
              routine_sides: tuple[str, ...]) -> Pose:
        raw_name = data.get("name")
        shown_name = short(raw_name) if isinstance(raw_name, str) and raw_name.strip() else None
        place = Place(pose=(number, shown_name))
        self._unknown_keys(data, _POSE_KEYS, "the pose", place)
        if raw_name is None:
            raise self.fail('has no name; add a line like name = "Leg up" to this [[poses]] table', place)
        name = self._text(raw_name, "name", place, limit=100)
        hold = self._number(data.get("hold", default_hold), "hold", place, MIN_HOLD, MAX_HOLD, "seconds")
        rest = self._flag(data.get("rest", False), "rest", place)
        chimes = data.get("chimes", True)
        if not rest and "chimes" in data:
            raise self.fail("chimes = true/false is for a rest (rest = true); a pose's hold always has its "
                            "chimes. Sounds of your own go in a [chimes] table at the top of the file",
                            place, "chimes")
        chimes = self._flag(chimes, "chimes", place)
        sides = None if "sides" not in data else self._sides(data["sides"], place)
        done_on = (() if rest else routine_sides) if sides is None else sides
        if done_on:
            no_sides = None
        elif rest and sides is None:
            no_sides = "a rest is done once; add sides = [\"right\", \"left\"] to this rest to do it on each side"
        elif sides is None:
            no_sides = "this routine has no sides (defaults.sides is empty)"
        else:
            no_sides = "this pose is done once (sides = [])"
        group = self._text(data.get("group", ""), "group", place, allow_empty=True, limit=100)
        if group and not done_on:
            raise self.fail(f"group {_toml_repr(group)} only joins poses done on each side, but {no_sides}",
                            place, "group")
        side_switch = None if "side_switch" not in data else \
            self._lines(data["side_switch"], "side_switch", place, no_side_because=no_sides, sides=done_on)
        if side_switch is not None and not done_on:
            raise self.fail(f"side_switch is spoken when the side changes before this pose, but {no_sides}",
                            place, "side_switch")
        settle = data.get("settle")
        if settle is not None:
            settle = self._number(settle, "settle", place, 0, MAX_SETTLE, "seconds")
        min_hold, max_hold = self._hold_bounds(data, place)
        pose = Pose(
            name=name,
            targets=self._text(data.get("targets", ""), "targets", place, allow_empty=True),
            setup=self._lines(data.get("setup", []), "setup", place, no_side_because=no_sides, sides=done_on),
            hold=hold,
            cues=self._cues(data.get("cues", []), place, hold, no_sides, done_on),
            release=self._lines(data.get("release", []), "release", place, no_side_because=no_sides,
                                sides=done_on),
            sides=sides, rest=rest, chimes=chimes, settle=settle, min_hold=min_hold, max_hold=max_hold,
            side_switch=side_switch, group=group,
        )
        self._check_cues_fit(pose, place, speed)
        return pose

    def _cues(self, value: Any, place: Place, hold: float, no_sides: str | None,
              sides: tuple[str, ...]) -> tuple[Cue, ...]:
        items = self._list(value, "cues", place, 'a list of texts, or of tables like { text = "...", at = 10 }')
        numbered = isinstance(value, list) and len(items) > 1
        cues = []
        for n, item in enumerate(items, 1):
            label = f"cue {n}" if numbered else "cue"
            if not isinstance(item, dict):
                cues.append(Cue(self._text(item, "cues", place, label=label, spoken=True, no_side_because=no_sides,
                                           sides=sides)))
                continue
            cue_place = Place(pose=place.pose, cue=n)
            self._unknown_keys(item, _CUE_KEYS, label, cue_place)
            if "text" not in item:
                raise self.fail(f'{label} has no text; write it as {{ text = "...", at = 10 }}', cue_place, "cues")
            text = self._text(item["text"], "text", cue_place, label=label, spoken=True, no_side_because=no_sides,
                              sides=sides)
            at = item.get("at")
            if at is not None:
                at = self._number(at, "at", cue_place, 0, hold, "seconds", label=f"{label}: at")
                if at >= hold:
                    raise self.fail(f"{label}: at must be a second inside the {_num(hold)} s hold, from 0 "
                                    f"to under {_num(hold)}, got {_num(at)}", cue_place, "at")
            detail = self._flag(item.get("detail", False), "detail", cue_place, label=f"{label}: detail")
            cues.append(Cue(text, at, detail))
        return tuple(cues)

    def _check_cues_fit(self, pose: Pose, place: Place, speed: float) -> None:
        """Reject cues that cannot fit the hold even at the routine's speed (estimated from words),
        and a cue with `at` that starts while an earlier timed one is still being said."""
        if not pose.cues:
            return
        numbered = len(pose.cues) > 1
        timed = sorted((c.at, n, c) for n, c in enumerate(pose.cues, 1) if c.at is not None)
        for (at, n, cue), (next_at, next_n, _) in zip(timed, timed[1:]):
            ends = at + estimate_speech_seconds(cue.text, speed) + CUE_GAP
            if next_at < ends:
                later = f"cue {next_n}" if numbered else "cue"
                raise self.fail(
                    f"{later} (at = {_num(next_at)}) starts while cue {n} (at = {_num(at)}) is still being "
                    f"said, which takes about {ends - at:.0f} s; move it to at = {math.ceil(ends)} or later, "
                    "or leave out at to have it placed for you", Place(pose=place.pose, cue=next_n), "at")
        needed = sum(estimate_speech_seconds(c.text, speed) + CUE_GAP for c in pose.cues)
        chimes_inside = (1 if pose.chimes else 0) if pose.rest else 2  # a rest's end chime rings after it
        available = pose.hold - chimes_inside * CHIME_CLEARANCE
        if needed > available:
            raise self.fail(
                f"{_count(len(pose.cues), 'cue')} need{'s' if len(pose.cues) == 1 else ''} about {needed:.0f} s "
                f"but the {_num(pose.hold)} s hold leaves "
                f"about {max(available, 0):.0f} s between its chimes; lengthen hold or remove cues",
                place, "cues",
            )

    def _chimes(self, value: Any) -> dict[str, Path]:
        place = Place(table="chimes")
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
            problem = file_problem(path)
            if not problem and not is_file(path):  # a device or pipe would never end
                problem = "is not a regular file"
            if problem:
                raise self.fail(f"{label}: {short(str(path), 120)} {problem}; give the path of a WAV file, "
                                "relative to the routine file's folder", place, kind)
            if not os.access(path, os.R_OK):
                raise self.fail(f"{label}: {short(str(path), 120)} cannot be read (permission denied); "
                                "check the file's permissions", place, kind)
            chimes[kind] = path
        return chimes

    def _check_length(self, routine: Routine) -> None:
        speed = routine.speed or 1.0

        def say(lines) -> float:
            return sum(estimate_speech_seconds(t, speed) for t in lines)

        sides = max(1, len(routine.all_sides))
        total = say(routine.intro) + say(routine.outro)
        for pose in routine.poses:
            times = max(1, len(routine.sides_of(pose)))
            total += times * (pose.hold + say(pose.setup) + say(pose.release)) \
                + (times - 1) * say(routine.switch_lines_of(pose))
        if total > MAX_SESSION_SECONDS:
            raise self.fail(f"the session would last about {total / 3600:.1f} hours "
                            f"({len(routine.poses)} poses x {sides} sides); a routine may last at most "
                            f"{MAX_SESSION_SECONDS // 3600} hours: shorten holds or remove poses")


def _forms(count: int) -> str:
    return _count(count, "form")


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _visible(text: str) -> str:
    """`text` in quotes, with what cannot be seen (a zero-width or other invisible character)
    written as \\u escapes, and the rest, an emoji say, as it is."""
    def shown(ch: str) -> str:
        invisible = not ch.isprintable() or (unicodedata.category(ch) in ("Cf", "Zs", "Mn") and ch != " ")
        return f"\\u{ord(ch):04x}" if invisible else ch
    return '"' + "".join(shown(ch) for ch in text.replace("\\", "\\\\").replace('"', '\\"')) + '"'
