"""The spoken script with times: txt (one line per event) and md (a readable document).

The md document is for people: its headings and notes are in the routine's language
(coach.export.wording). The txt lines keep their English markers ("(chime: hold start)",
"-- hold 45 s: ... --") whatever the language, as programs may read them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from coach.audio import SAMPLE_RATE
from coach.export.times import clock
from coach.export.wording import ENGLISH, wording
from coach.timeline import Event, Timeline

if TYPE_CHECKING:  # coach.session pulls in the speech engine; exporting needs only its data
    from coach.session import Session


def chime_name(kind: str) -> str:
    return kind.replace("_", " ")


def _seconds(samples: int) -> str:
    """A hold length for people: 45 s, 7.5 s."""
    return f"{round(samples / SAMPLE_RATE, 2):g} s"


def _summary(session: Session, words: dict[str, str] = ENGLISH) -> str:
    options = session.options
    voice = options.voice or words["default_voice"]
    return f"{words['length']} {clock(session.timeline.length)} · {words['speed']} {options.speed:g} · {voice}"


def _label(timeline: Timeline, event: Event) -> str:
    if event.section is not None:
        return timeline.sections[event.section].label
    return f"{event.pose} ({event.side})" if event.side else (event.pose or "")


def render_txt(session: Session) -> str:
    routine, timeline = session.routine, session.timeline
    lines = [routine.title]
    if routine.credit:
        lines.append(routine.credit)
    lines.append(_summary(session))
    lines += [f"Note: {warning}" for warning in timeline.warnings]
    lines.append("")
    for event in timeline.events:
        at = f"[{clock(event.start)}]"
        if event.kind == "speech":
            lines.append(f"{at} {event.text}")
        elif event.kind == "chime":
            lines.append(f"{at} (chime: {chime_name(event.part)})")
        else:
            lines.append(f"{at} -- {event.part} {_seconds(event.length)}: {_label(timeline, event)} --")  # hold or rest
    return "\n".join(lines) + "\n"



_MD_SPECIAL = set("\\`*_[]<>#|&~")  # & would start an entity (&copy;), ~~ strike through


def md_escape(text: str) -> str:
    """Routine text shown literally in Markdown (a `*` or `_` in a cue is not emphasis)."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)


def _md_block(event: Event) -> tuple:
    """Which heading an event belongs under."""
    if event.part in ("intro", "outro"):
        return (event.part,)
    if event.part in ("switch", "side_switch"):
        return ("switch", event.section)
    return ("pose", event.section)


def render_md(session: Session) -> str:
    routine, timeline = session.routine, session.timeline
    words = wording(routine.language)
    out = [f"# {md_escape(routine.title)}", ""]
    if routine.credit:
        out += [f"*{md_escape(routine.credit)}*", ""]
    if routine.description:
        out += [md_escape(routine.description), ""]
    if routine.props:
        out += [f"**{words['props']}:** {md_escape(', '.join(routine.props))}", ""]
    out += [md_escape(_summary(session, words)), ""]
    for warning in timeline.warnings:
        out += [f"> Note: {md_escape(warning)}", ""]

    by_part: dict[tuple, list[Event]] = {}
    for event in timeline.events:
        by_part.setdefault(_md_block(event), []).append(event)
    midpoints = {e.section: e for e in timeline.events if e.part == "midpoint"}
    for block, events in by_part.items():
        if block[0] == "intro":
            out += [f"## {words['introduction']}", ""] + _md_lines(events, words) + [""]
        elif block[0] == "outro":
            out += [f"## {words['closing']}", ""] + _md_lines(events, words) + [""]
        elif block[0] == "switch":
            side = timeline.sections[block[1]].side
            out += [f"## {words['change_sides']}" + (f": {md_escape(side)}" if side else ""), ""]
            out += _md_lines(events, words) + [""]
        else:
            out += _md_pose(session, block[1], events, midpoints.get(block[1]), words)
    return "\n".join(out).rstrip("\n") + "\n"


def _md_lines(events: Iterable[Event], words: dict[str, str]) -> list[str]:
    lines = []
    for event in events:
        if event.kind == "speech":
            lines.append(f"- **{clock(event.start)}** {md_escape(event.text)}")
        elif event.kind == "chime":
            name = words.get(event.part, chime_name(event.part))
            lines.append(f"- **{clock(event.start)}** *{words['chime']}: {name}*")
    return lines


def _md_pose(session: Session, index: int, events: list[Event], midpoint: Event | None,
             words: dict[str, str]) -> list[str]:
    section = session.timeline.sections[index]
    pose = session.routine.poses[section.pose_number - 1]
    out = [f"## {md_escape(section.label)}", ""]
    if pose.targets:
        out += [f"*{words['stretches']}: {md_escape(pose.targets)}*", ""]
    setup = [e for e in events if e.part == "setup"]
    during = [e for e in events if e.part in ("cue", "countdown")]
    release = [e for e in events if e.part == "release"]
    if setup:
        out += _md_lines(setup, words) + [""]
    start, end = clock(section.hold_start), clock(section.hold_start + section.hold_length)
    span = words["from_to"].format(start=start, end=end)
    if pose.rest:  # a rest has its own chimes at its start and end, or none
        line = f"**{words['rest']} {_seconds(section.hold_length)}**, {span}"
        line += ": " + words["chimes_at"].format(start=start, end=end) if pose.chimes else f", {words['no_chimes']}"
    else:
        line = f"**{words['hold']} {_seconds(section.hold_length)}**, {span}: " + words["chime_at"].format(at=start)
    if midpoint is not None:
        line += ", " + words["halfway"].format(at=clock(midpoint.start))
    out += [line + ".", ""]
    if during:
        out += _md_lines(during, words) + [""]
    if release:
        out += [f"{words['release']}:", ""] + _md_lines(release, words) + [""]
    return out

