"""Captions for every spoken line: srt and vtt, timed from the timeline to the millisecond."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coach.export.times import milliseconds
from coach.timeline import Timeline

if TYPE_CHECKING:  # coach.session pulls in the speech engine; exporting needs only its data
    from coach.session import Session

# Common subtitle guidance: about 42 characters a line, two lines on screen at most.
CAPTION_LINE_CHARS = 42
CAPTION_MAX_LINES = 2


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

