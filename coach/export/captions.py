"""Captions for every spoken line: srt and vtt, timed from the timeline to the millisecond."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coach.export.times import milliseconds
from coach.speech.clip import Word, ends_in_mark
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
    # Where each word of `lines` starts (samples), in order, when the speech engine said so;
    # empty for a caption timed by its share of the utterance.
    word_starts: tuple[int, ...] = ()


def captions(timeline: Timeline) -> list[Caption]:
    """One or more captions per speech event, in order. A long utterance is split into
    consecutive captions at word boundaries: each starts when its first word starts and
    ends when its last word ends (from the event's words), or, for an event without word
    times, they share the event's span by length."""
    out: list[Caption] = []
    for event in timeline.events:
        if event.kind == "speech":
            out += word_captions(event.words) if event.words else split_caption(event.text, event.start, event.end)
    return out


def word_captions(words: Sequence[Word]) -> list[Caption]:
    """Captions cut between words: each starts on its first word's first sample and ends on
    its last word's end (a pause between two captions shows none)."""
    # A word is one unit on a line: a dash that belongs to it stays with it (no-break space).
    texts = ["\u00a0".join(w.text.split()) for w in words]
    out: list[Caption] = []
    first = 0
    for chunk in _chunks_of_words(texts):
        said = words[first:first + len(chunk)]
        first += len(chunk)
        lines = _as_lines(chunk) or (" ".join(chunk),)
        out.append(Caption(said[0].start, said[-1].end, lines, tuple(w.start for w in said)))
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
    return [_as_lines(chunk) for chunk in _chunks_of_words(text.split())] or [()]  # type: ignore[misc]


def _chunks_of_words(words: Sequence[str]) -> list[list[str]]:
    """The words, in order, cut into runs that each fit one caption (see caption_chunks)."""
    chunks: list[list[str]] = []
    sentence: list[str] = []
    for i, word in enumerate(words):
        sentence.append(word)
        if ends_in_mark(word, ".!?") or i == len(words) - 1:
            if chunks and _as_lines(chunks[-1] + sentence) is not None:
                chunks[-1] = chunks[-1] + sentence
            else:
                chunks += _word_chunks(sentence)
            sentence = []
    return chunks


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
            cost = max(len(first), len(second)) - (_PUNCTUATION_BONUS if ends_in_mark(first, ".,;:!?") else 0)
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
                  - (2 * _PUNCTUATION_BONUS if ends_in_mark(words[i - 1], ".,;:!?") else 0))
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
        blocks.append("\n".join([str(number), times, *(srt_text(line) for line in caption.lines)]))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def srt_text(text: str) -> str:
    # SRT has no escapes, and players read <...> as HTML-like tags (ffmpeg drops "<slowly>"
    # and makes "a < b > c" bold): angle brackets are written as the look-alike ‹ and ›.
    return text.replace("<", "\u2039").replace(">", "\u203a")


def vtt_escape(text: str) -> str:
    # WebVTT cue text treats & and < as markup, and "-->" would end the timing line.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(session: Session) -> str:
    blocks = ["WEBVTT"]
    for caption in captions(session.timeline):
        times = f"{caption_time(caption.start, '.')} --> {caption_time(caption.end, '.')}"
        blocks.append("\n".join([times, *vtt_cue_lines(caption)]))
    return "\n\n".join(blocks) + "\n"


def vtt_cue_lines(caption: Caption) -> list[str]:
    """The caption's lines, escaped, with a WebVTT timestamp (<00:01:02.345>) before every
    word after the first when its word times are known: players that support them show the
    words as they are said, the others show the text as it is."""
    if not caption.word_starts:
        return [vtt_escape(line) for line in caption.lines]
    starts = iter(caption.word_starts[1:])
    lines = []
    for n, line in enumerate(caption.lines):
        words = [vtt_escape(word) for word in line.split(" ")]
        marked = [words[0] if n == 0 else f"<{caption_time(next(starts), '.')}>{words[0]}"]
        marked += [f"<{caption_time(next(starts), '.')}>{word}" for word in words[1:]]
        lines.append(" ".join(marked))
    return lines

