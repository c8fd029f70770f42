"""The spoken script with times: txt (one line per event) and md (a readable document)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from coach.audio import SAMPLE_RATE
from coach.export.times import clock
from coach.timeline import Event, Timeline

if TYPE_CHECKING:  # coach.session pulls in the speech engine; exporting needs only its data
    from coach.session import Session


def chime_name(kind: str) -> str:
    return kind.replace("_", " ")


def _seconds(samples: int) -> str:
    """A hold length for people: 45 s, 7.5 s."""
    return f"{round(samples / SAMPLE_RATE, 2):g} s"


def _summary(session: Session) -> str:
    options = session.options
    voice = options.voice or "default voice"
    return f"Length {clock(session.timeline.length)} · speed {options.speed:g} · {voice}"


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



_MD_SPECIAL = set("\\`*_[]<>#|")


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
    out = [f"# {md_escape(routine.title)}", ""]
    if routine.credit:
        out += [f"*{md_escape(routine.credit)}*", ""]
    if routine.description:
        out += [md_escape(routine.description), ""]
    if routine.props:
        out += [f"**Props:** {md_escape(', '.join(routine.props))}", ""]
    out += [md_escape(_summary(session)), ""]
    for warning in timeline.warnings:
        out += [f"> Note: {md_escape(warning)}", ""]

    by_part: dict[tuple, list[Event]] = {}
    for event in timeline.events:
        by_part.setdefault(_md_block(event), []).append(event)
    midpoints = {e.section: e for e in timeline.events if e.part == "midpoint"}
    for block, events in by_part.items():
        if block[0] == "intro":
            out += ["## Introduction", ""] + _md_lines(events) + [""]
        elif block[0] == "outro":
            out += ["## Closing", ""] + _md_lines(events) + [""]
        elif block[0] == "switch":
            side = timeline.sections[block[1]].side
            out += ["## Change sides" + (f": {md_escape(side)}" if side else ""), ""]
            out += _md_lines(events) + [""]
        else:
            out += _md_pose(session, block[1], events, midpoints.get(block[1]))
    return "\n".join(out).rstrip("\n") + "\n"


def _md_lines(events: Iterable[Event]) -> list[str]:
    lines = []
    for event in events:
        if event.kind == "speech":
            lines.append(f"- **{clock(event.start)}** {md_escape(event.text)}")
        elif event.kind == "chime":
            lines.append(f"- **{clock(event.start)}** *chime: {chime_name(event.part)}*")
    return lines


def _md_pose(session: Session, index: int, events: list[Event], midpoint: Event | None) -> list[str]:
    section = session.timeline.sections[index]
    pose = session.routine.poses[section.pose_number - 1]
    out = [f"## {md_escape(section.label)}", ""]
    if pose.targets:
        out += [f"*Stretches: {md_escape(pose.targets)}*", ""]
    setup = [e for e in events if e.part == "setup"]
    during = [e for e in events if e.part in ("cue", "countdown")]
    release = [e for e in events if e.part == "release"]
    if setup:
        out += _md_lines(setup) + [""]
    hold_end = section.hold_start + section.hold_length
    if pose.rest:  # a rest has its own chimes at its start and end, or none
        line = f"**Rest {_seconds(section.hold_length)}**, {clock(section.hold_start)} to {clock(hold_end)}"
        line += f": chime at {clock(section.hold_start)} and at {clock(hold_end)}" if pose.chimes else ", no chimes"
    else:
        line = (f"**Hold {_seconds(section.hold_length)}**, {clock(section.hold_start)} to "
                f"{clock(hold_end)}: chime at {clock(section.hold_start)}")
    if midpoint is not None:
        line += f", halfway chime at {clock(midpoint.start)}"
    out += [line + ".", ""]
    if during:
        out += _md_lines(during) + [""]
    if release:
        out += ["Release:", ""] + _md_lines(release) + [""]
    return out

