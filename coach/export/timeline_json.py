"""The timeline as JSON, for other tools; docs/export-formats.md describes every field."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from coach.audio import SAMPLE_RATE
from coach.export.times import seconds as _s
from coach.timeline import ordered_sides

if TYPE_CHECKING:  # coach.session pulls in the speech engine; exporting needs only its data
    from coach.session import Session

JSON_FORMAT_NAME = "coach-timeline"
JSON_VERSION = 2  # 2: every event lists its words


def timeline_document(session: Session) -> dict:
    """The timeline as plain data; docs/export-formats.md describes every field."""
    routine, options, timeline = session.routine, session.options, session.timeline
    sides = ordered_sides(routine, options.start_side, routine.all_sides)
    return {
        "format": JSON_FORMAT_NAME,
        "version": JSON_VERSION,
        "sample_rate": SAMPLE_RATE,
        "title": routine.title,
        "credit": routine.credit,
        "description": routine.description,
        "routine": routine.name,
        "length_seconds": _s(timeline.length),
        "length_samples": timeline.length,
        "settings": {
            "speed": options.speed,
            "voice": options.voice,
            "engine": options.engine,
            "volume": options.volume,
            "hold": options.hold,
            "start_side": sides[0],
            "sides": [side for side in sides if side is not None],
            "countdown": options.countdown,
            "guidance": options.guidance,
            "minutes": options.minutes,
        },
        "warnings": list(timeline.warnings),
        "sections": [
            {
                "index": s.index,
                "pose_number": s.pose_number,
                "pose": s.pose,
                "side": s.side,
                "label": s.label,
                "start": _s(s.start),
                "end": _s(s.end),
                "hold_start": _s(s.hold_start),
                "hold_seconds": _s(s.hold_length),
                "start_sample": s.start,
                "end_sample": s.end,
                "hold_start_sample": s.hold_start,
                "hold_length_samples": s.hold_length,
            }
            for s in timeline.sections
        ],
        "events": [
            {
                "start": _s(e.start),
                "end": _s(e.end),
                "duration": _s(e.length),
                "start_sample": e.start,
                "length_samples": e.length,
                "kind": e.kind,
                "part": e.part,
                "text": e.text,
                "pose": e.pose,
                "side": e.side,
                "section": e.section,
                "words": [
                    {"text": w.text, "start": _s(w.start), "end": _s(w.end),
                     "start_sample": w.start, "end_sample": w.end}
                    for w in e.words
                ],
            }
            for e in timeline.events
        ],
    }


def render_json(session: Session) -> str:
    return json.dumps(timeline_document(session), indent=2, ensure_ascii=False) + "\n"

