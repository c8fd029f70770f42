"""A spoken clip: its samples, and where in them every word starts and ends.

Words are the utterance's own: runs of non-space characters, with a run that holds no
letter or digit ("-", an em dash, a lone quote) joined to the word before it, so every
caption and every marked word starts on something that is said. The engines say when
some of these words start (espeak: an event per word it speaks; Piper: phoneme
durations); `place_words` turns those marks into a start and end for every word,
giving a word with no mark a time between its neighbours.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

_RUN = re.compile(r"\S+")


@dataclass(frozen=True)
class Word:
    """One word of an utterance: its text and its samples [start, end) in the clip."""

    text: str
    start: int
    end: int

    def shifted(self, offset: int) -> Word:
        return Word(self.text, self.start + offset, self.end + offset)


@dataclass(frozen=True)
class Clip:
    """Mono float32 samples at SAMPLE_RATE and the words they say, in order."""

    samples: np.ndarray
    words: tuple[Word, ...] = ()

    def __len__(self) -> int:
        return len(self.samples)


def word_spans(text: str) -> list[tuple[int, int]]:
    """The words of `text` as [start, end) character offsets, in order."""
    spans: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        said = any(ch.isalnum() for ch in run.group())
        if not said and spans:
            spans[-1] = (spans[-1][0], run.end())
        elif said and spans and not any(ch.isalnum() for ch in text[spans[-1][0]:spans[-1][1]]):
            spans[-1] = (spans[-1][0], run.end())  # leading punctuation joins the first word
        else:
            spans.append((run.start(), run.end()))
    return spans


def place_words(text: str, marks: Iterable[tuple[int, int]], length: int,
                sound: np.ndarray | None = None) -> tuple[Word, ...]:
    """Every word of `text` with its samples, from marks (character offset, start sample).

    A mark belongs to the word whose characters hold its offset, and a word starts at its
    earliest mark, so an engine that marks "77" twice, or not at all between "in" and
    "white", still gives each word one start. Marks outside the text or the clip are
    ignored. A word without a mark shares the time between its neighbours' starts by
    length in characters. A word ends where the next one starts, or, when `sound` (the
    clip's samples) is given, where its sound stops before that: a word before a pause
    ends when its sound does, not when the next word starts.
    """
    spans = word_spans(text)
    if not spans:
        return ()
    starts: list[int | None] = [None] * len(spans)
    ends_at = [end for _, end in spans]
    for offset, sample in marks:
        if not (0 <= sample < length):
            continue
        index = _span_holding(spans, ends_at, offset)
        if index is not None and (starts[index] is None or sample < starts[index]):
            starts[index] = sample
    timed = _fill_gaps(starts, spans, length)
    if sound is not None:
        ends = _sound_ends(sound, timed, length)
    else:
        ends = timed[1:] + [length]
    return tuple(Word(text[a:b], int(start), int(end)) for (a, b), start, end in zip(spans, timed, ends))


def _span_holding(spans: Sequence[tuple[int, int]], ends_at: Sequence[int], offset: int) -> int | None:
    index = bisect.bisect_right(ends_at, offset)
    if index < len(spans) and spans[index][0] <= offset:
        return index
    return None


def _fill_gaps(starts: list[int | None], spans: Sequence[tuple[int, int]], length: int) -> list[int]:
    """Starts for every word: marks kept in order, words without one shared out between."""
    marked = list(starts)
    latest = 0
    for i, start in enumerate(marked):
        if start is not None:
            if start < latest:  # earlier than a word before it: an engine's slip, not a time
                marked[i] = None
            else:
                latest = start
    if marked[0] is None:
        marked[0] = 0
    result: list[int] = []
    i = 0
    while i < len(marked):
        j = i + 1
        while j < len(marked) and marked[j] is None:
            j += 1
        begin, until = marked[i], (marked[j] if j < len(marked) else length)
        sizes = [spans[k][1] - spans[k][0] for k in range(i, j)]
        total = sum(sizes)
        before = 0
        for size in sizes:
            result.append(begin + (until - begin) * before // total)
            before += size
        i = j
    return result


def _sound_ends(sound: np.ndarray, starts: list[int], length: int, frame: int = 110) -> list[int]:
    """Where each word's sound stops: the end of its last loud frame before the next word starts.

    frame: 110 samples (5 ms at 22050 Hz). Loud: within 40 dB of the clip's peak.
    """
    nexts = starts[1:] + [length]
    peak = float(np.max(np.abs(sound))) if sound.size else 0.0
    ends: list[int] = []
    for start, nxt in zip(starts, nexts):
        end = nxt
        if peak > 0 and nxt > start:
            part = np.abs(sound[start:nxt]) >= peak * 0.01
            if part.any():
                last = int(np.flatnonzero(part)[-1])
                end = min(nxt, start + (last // frame + 1) * frame)
        ends.append(max(end, start))
    return ends


@dataclass(frozen=True)
class RawSpeech:
    """What an engine renders: unpolished samples, and where words start in them, as
    (character offset in the text, sample) marks, in the engine's order."""

    samples: np.ndarray
    marks: tuple[tuple[int, int], ...] = ()

    def __len__(self) -> int:
        return len(self.samples)
