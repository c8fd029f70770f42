"""Writing a session out: the mixed audio (wav), the script (txt, md), captions (srt, vtt)
and the timeline itself (json).

Every format reads the same `Session.timeline`, in integer samples, so a caption starts
on the very sample its speech starts in the WAV. Files go through `files.atomic_writer`
(temporary name, then rename); `-o -` sends a text format to stdout. See
docs/export-formats.md for what each format contains.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from coach.audio import SAMPLE_RATE, to_int16
from coach.errors import ExportError, UsageError
from coach.files import atomic_writer, check_target
from coach.mixer import session_sounds
from coach.timeline import Event, Timeline, ordered_sides

if TYPE_CHECKING:  # coach.session pulls in the speech engine; exporting needs only its data
    from coach.session import Session

FORMATS = ("wav", "txt", "md", "srt", "vtt", "json")
TEXT_FORMATS = FORMATS[1:]
STDOUT = "-"
# Names people use for the same formats, as a file suffix or a --format value.
_ALIASES = {"wave": "wav", "text": "txt", "markdown": "md", "webvtt": "vtt"}

# Common subtitle guidance: about 42 characters a line, two lines on screen at most.
CAPTION_LINE_CHARS = 42
CAPTION_MAX_LINES = 2

JSON_FORMAT_NAME = "coach-timeline"
JSON_VERSION = 1


# ---------------------------------------------------------------------------
# Choosing the format and checking the target, before any work

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


# ---------------------------------------------------------------------------
# Writing

def write_export(session: Session, output: str, fmt: str | None = None, *, force: bool = False,
                 progress: Callable[[int, int], None] | None = None,
                 stdout: TextIO | None = None) -> str:
    """Write the session to `output` (a path, or `-` for stdout) and return the format written.

    progress(done_samples, total_samples) is called while the WAV is written.
    """
    name = check_output(output, fmt, force)
    if output == STDOUT:
        write_to_stdout(render_text(session, name), stdout if stdout is not None else sys.stdout)
        return name
    with atomic_writer(Path(output), force=force) as handle:
        if name == "wav":
            write_wav_stream(handle, session, progress)
        else:
            handle.write(render_text(session, name).encode("utf-8"))
    return name


def write_to_stdout(text: str, stream: TextIO) -> None:
    """Write and flush; a reader that went away (`| head -1`) ends the output quietly."""
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            # Bytes, so the output is UTF-8 whatever the locale says.
            stream.flush()
            _write_all(buffer, text.encode("utf-8"))
            buffer.flush()
        else:
            stream.write(text)
            stream.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit and would print a second error there;
        # point the descriptor at /dev/null so that last flush goes nowhere.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass


def _write_all(binary: BinaryIO, data: bytes) -> None:
    # Under PYTHONUNBUFFERED (python -u) stdout.buffer is a raw file whose write may take
    # only part of the data (a pipe whose reader left); go on until all is written or the
    # pipe reports that it is broken, never dropping the rest silently.
    view = memoryview(data)
    while view:
        view = view[binary.write(view) or 0:]  # None: a non-blocking pipe is full; try again


WAV_HEADER_BYTES = 44


def wav_header(frames: int, rate: int = SAMPLE_RATE) -> bytes:
    """The 44-byte header of a 16-bit mono PCM WAV holding `frames` samples."""
    data_bytes = frames * 2
    if data_bytes > 0xFFFFFFFF - 36:
        raise ExportError(f"the session is {frames / rate / 3600:.1f} hours long, too long for one "
                          "WAV file (4 GiB); export a shorter routine or use --hold")
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16,
                       1, 1, rate, rate * 2, 2, 16, b"data", data_bytes)


def write_wav_stream(handle: BinaryIO, session: Session,
                     progress: Callable[[int, int], None] | None = None) -> int:
    """The whole session as a 16-bit mono WAV, sound by sound: the length is known from the
    timeline, so the header is final before the first sample and nothing is patched after.

    Only the sounds are written. The silence between them (most of a session: the holds)
    is skipped with a seek, which leaves zeros, and as holes on most file systems: an hour's
    export writes and syncs less than half of its bytes.
    """
    total = session.timeline.length
    handle.write(wav_header(total))
    if progress:
        progress(0, total)
    for start, sound in session_sounds(session.timeline, session.speech, session.chimes,
                                       session.options.volume):
        if start + len(sound) > total:
            # A header that disagrees with the data would be a broken file; never keep it.
            raise RuntimeError(f"bug: a sound ends at sample {start + len(sound)} but the timeline is {total} long")
        handle.seek(WAV_HEADER_BYTES + 2 * start)
        handle.write(memoryview(to_int16(sound, scratch=True).astype("<i2", copy=False)).cast("B"))
        if progress:
            progress(start + len(sound), total)
    handle.truncate(WAV_HEADER_BYTES + 2 * total)  # the silence after the last sound
    if progress:
        progress(total, total)
    return total


# ---------------------------------------------------------------------------
# Text formats

def render_text(session: Session, fmt: str) -> str:
    """The session as txt, md, srt, vtt or json text."""
    renderers = {"txt": render_txt, "md": render_md, "srt": render_srt, "vtt": render_vtt,
                 "json": render_json}
    if fmt not in renderers:
        raise UsageError(f"{fmt!r} is not a text format; use one of {', '.join(TEXT_FORMATS)}")
    return renderers[fmt](session)


def clock(sample: int) -> str:
    """mm:ss, rounded down to the second; minutes go past 59 in a long session."""
    seconds = sample // SAMPLE_RATE
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


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
            lines.append(f"{at} -- hold {_seconds(event.length)}: {_label(timeline, event)} --")
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


# -- captions ---------------------------------------------------------------

@dataclass(frozen=True)
class Caption:
    start: int  # samples
    end: int
    lines: tuple[str, ...]


def captions(timeline: Timeline) -> list[Caption]:
    """One or more captions per speech event, in order; a long utterance is split into
    consecutive captions that together span exactly the event."""
    out: list[Caption] = []
    for event in timeline.events:
        if event.kind == "speech":
            out += split_caption(event.text, event.start, event.end)
    return out


def split_caption(text: str, start: int, end: int) -> list[Caption]:
    """Captions of at most CAPTION_MAX_LINES lines; each gets a share of [start, end]
    in proportion to its length in characters, a fair stand-in for speaking time."""
    chunks = caption_chunks(text)
    weights = [max(1, len(" ".join(chunk))) for chunk in chunks]
    total = sum(weights)
    bounds = [start]
    done = 0
    for weight in weights[:-1]:
        done += weight
        bounds.append(start + (end - start) * done // total)
    bounds.append(end)
    return [Caption(bounds[i], bounds[i + 1], chunk) for i, chunk in enumerate(chunks)]


def caption_chunks(text: str) -> list[tuple[str, ...]]:
    """The text as captions of one or two lines of at most CAPTION_LINE_CHARS characters
    (a single longer word gets a line of its own). Sentences stay whole where they fit, and
    short ones share a caption; a sentence too long for one is cut into evenly filled parts."""
    chunks: list[list[str]] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        words = sentence.split()
        if not words:
            continue
        if chunks and _as_lines(chunks[-1] + words) is not None:
            chunks[-1] = chunks[-1] + words
        else:
            chunks += _word_chunks(words)
    return [_as_lines(chunk) for chunk in chunks] or [()]  # type: ignore[misc]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A line break after a comma or full stop reads better; worth this many characters of balance.
_PUNCTUATION_BONUS = 6


def _word_chunks(words: list[str]) -> list[list[str]]:
    """As few captions as possible, evenly filled, when that fits; else filled greedily."""
    greedy: list[list[str]] = [[]]
    for word in words:
        if greedy[-1] and _as_lines(greedy[-1] + [word]) is None:
            greedy.append([])
        greedy[-1].append(word)
    if len(greedy) > 1:
        even = _even_split(words, len(greedy))
        if even is not None and all(_as_lines(part) is not None for part in even):
            return even
    return greedy


def _as_lines(words: list[str]) -> tuple[str, ...] | None:
    """The words as one line, or two balanced lines, within the width; None if they do not fit."""
    whole = " ".join(words)
    if len(whole) <= CAPTION_LINE_CHARS or len(words) == 1:
        return (whole,)
    best = None
    for i in range(1, len(words)):
        first, second = " ".join(words[:i]), " ".join(words[i:])
        if len(first) <= CAPTION_LINE_CHARS and len(second) <= CAPTION_LINE_CHARS:
            cost = max(len(first), len(second)) - (_PUNCTUATION_BONUS if first[-1] in ".,;:!?" else 0)
            if best is None or cost < best[0]:
                best = (cost, (first, second))
    return best[1] if best else None


def _even_split(words: list[str], parts: int) -> list[list[str]] | None:
    """Cut the words into `parts` runs of about equal length in characters, preferring a cut
    after punctuation."""
    ends = []  # characters up to and including word i
    count = 0
    for word in words:
        count += len(word) + 1
        ends.append(count)
    cuts = [0]
    for k in range(1, parts):
        target = count * k / parts
        cut = min(range(1, len(words)), key=lambda i: abs(ends[i - 1] - target)
                  - (2 * _PUNCTUATION_BONUS if words[i - 1][-1] in ".,;:!?" else 0))
        if cut <= cuts[-1]:
            return None
        cuts.append(cut)
    cuts.append(len(words))
    return [words[a:b] for a, b in zip(cuts, cuts[1:])]


def milliseconds(sample: int) -> int:
    """A sample position in whole milliseconds, rounded to nearest (exact integer arithmetic)."""
    return (sample * 1000 + SAMPLE_RATE // 2) // SAMPLE_RATE


def caption_time(sample: int, separator: str) -> str:
    """HH:MM:SS,mmm (SRT, separator ",") or HH:MM:SS.mmm (WebVTT, separator ".")."""
    hours, rest = divmod(milliseconds(sample), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{ms:03d}"


def render_srt(session: Session) -> str:
    blocks = []
    for number, caption in enumerate(captions(session.timeline), start=1):
        times = f"{caption_time(caption.start, ',')} --> {caption_time(caption.end, ',')}"
        blocks.append("\n".join([str(number), times, *caption.lines]))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def vtt_escape(text: str) -> str:
    # WebVTT cue text treats & and < as markup, and "-->" would end the timing line.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(session: Session) -> str:
    blocks = ["WEBVTT"]
    for caption in captions(session.timeline):
        times = f"{caption_time(caption.start, '.')} --> {caption_time(caption.end, '.')}"
        blocks.append("\n".join([times, *(vtt_escape(line) for line in caption.lines)]))
    return "\n\n".join(blocks) + "\n"


# -- json -------------------------------------------------------------------

def _s(samples: int) -> float:
    return round(samples / SAMPLE_RATE, 6)


def timeline_document(session: Session) -> dict:
    """The timeline as plain data; docs/export-formats.md describes every field."""
    routine, options, timeline = session.routine, session.options, session.timeline
    sides = ordered_sides(routine, options.start_side)
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
            }
            for e in timeline.events
        ],
    }


def render_json(session: Session) -> str:
    return json.dumps(timeline_document(session), indent=2, ensure_ascii=False) + "\n"
