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
from collections.abc import Iterable, Iterator, Mapping, Sequence
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


class Clip:
    """Mono samples at SAMPLE_RATE and the words they say, in order.

    Made from float32 samples, or from the int16 ones the speech cache stores (`pcm16`;
    samples = pcm16 / 32768 exactly). The float32 samples of such a clip are made when first
    asked for: an export writes the int16 ones as they are, so an hour's export never makes
    the 33 million float samples (130 MB, and about 45 ms) that it would not use.
    """

    __slots__ = ("_samples", "words", "pcm16")

    def __init__(self, samples: np.ndarray | None = None, words: tuple[Word, ...] = (), *,
                 pcm16: np.ndarray | None = None) -> None:
        if samples is None and pcm16 is None:
            raise ValueError("a Clip needs its samples or its pcm16 samples")
        self._samples = samples
        self.words = tuple(words)
        self.pcm16 = pcm16

    @classmethod
    def from_pcm16(cls, pcm16: np.ndarray, words: tuple[Word, ...] = ()) -> Clip:
        return cls(None, words, pcm16=pcm16)

    @property
    def samples(self) -> np.ndarray:
        if self._samples is None:
            # Two threads may both make them; they make the same array, and one is kept.
            self._samples = from_int16(self.pcm16)
        return self._samples

    def __len__(self) -> int:
        return len(self._samples) if self._samples is not None else len(self.pcm16)

    def __repr__(self) -> str:
        return f"Clip({len(self)} samples, {len(self.words)} words)"


def to_int16(clip: np.ndarray) -> np.ndarray:
    """int16 samples of polished float32 ones, at the speech cache's scale (from_int16 undoes it)."""
    # The scale of coach.audio.to_int16 (32768), in float32: polished speech holds no NaN,
    # and float64 would cost a quarter of a second on a 60-minute session. One scratch
    # array, worked on in place (a third of the time of a new array per step). With the
    # same scale as the export's, a clip at the session gain of 1 is written as stored.
    scaled = np.multiply(clip, np.float32(32768.0), dtype=np.float32)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    return np.rint(scaled, out=scaled).astype(np.int16)


_FROM_INT16 = np.float32(1.0 / 32768.0)  # exact: a power of two


def from_int16(pcm: np.ndarray) -> np.ndarray:
    """float32 samples of int16 ones at the speech cache's scale (32768)."""
    return np.multiply(pcm, _FROM_INT16, dtype=np.float32)  # one pass, no int-to-float copy first


class ClipSamples(Mapping):
    """text -> the float32 samples of its clip, made only for the texts asked for (see Clip)."""

    def __init__(self, clips: Mapping[str, Clip]) -> None:
        self._clips = clips
        # The int16 samples of the clips that have them (from the cache), by text: what an
        # export at the session gain of 1 writes as they are.
        self.pcm16 = {text: clip.pcm16 for text, clip in clips.items() if clip.pcm16 is not None}

    def __getitem__(self, text: str) -> np.ndarray:
        return self._clips[text].samples

    def __iter__(self) -> Iterator[str]:
        return iter(self._clips)

    def __len__(self) -> int:
        return len(self._clips)


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
    length in characters. Without `sound` a word ends where the next one starts.

    With `sound` (the clip's samples) the times are made to agree with what is heard
    (see _heard_starts and _heard_ends): a word starts when its sound does, and a word
    before a pause ends when its sound stops, not when the next word starts.
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
    timed[0] = 0  # whatever an engine says, the clip starts with its first word
    if sound is not None and length:
        quiet = _quiet_frames(sound)
        after_pause = [i > 0 and ends_in_mark(text[slice(*spans[i - 1])], _PAUSE_MARKS) for i in range(len(spans))]
        timed = _heard_starts(quiet, timed, after_pause, length)
        ends = _heard_ends(quiet, timed, length)
    else:
        ends = timed[1:] + [length]
    return tuple(Word(text[a:b], int(start), int(end)) for (a, b), start, end in zip(spans, timed, ends))


# Sound, for word times: a 5 ms frame whose RMS is within 40 dB of the clip's loudest frame.
# (Piper's voiced "th" of "Then" rises over 50 ms through -48 to -40 dB: a start measured at
# a lower level is earlier and less certain.)
_FRAME = 110
_QUIET_DB = -40.0
_PAUSE_MARKS = set(",.;:!?")


def ends_in_mark(word: str, marks: Iterable[str]) -> bool:
    """Whether `word` ends in one of `marks`, also one inside a closing quote or bracket
    ('"Hello,"', 'in.)'): after a pause mark the voice may pause, and after a full stop a
    sentence ends (the captions keep sentences whole)."""
    end = len(word)
    while end and not word[end - 1].isalnum():
        end -= 1
    return any(ch in marks for ch in word[end:])
# A word after punctuation whose mark falls in sound may still begin a little earlier, where
# the pause before it ends (measured: Piper's alignments run up to 50 ms late at speed 0.6,
# and, its noise being random, now and then 100 ms; espeak's never): it is moved back to that
# pause's end if the pause ends at most this long before the mark...
_EARLY_ONSET = 3308  # 150 ms
# ...and lasted at least this long. Shorter silences are mostly the closure of a plosive
# ("soft, press" without a pause); Piper's pauses at a comma last 100 ms or more even at 1.8.
_MIN_PAUSE = 12  # frames: 60 ms


def _quiet_frames(sound: np.ndarray) -> np.ndarray:
    """Whether each 5 ms frame of `sound` is quiet: its RMS 40 dB or more below the loudest frame's."""
    x = sound.astype(np.float32, copy=False)
    whole = x.size - x.size % _FRAME
    frames = x[:whole].reshape(-1, _FRAME)
    power = np.einsum("ij,ij->i", frames, frames)
    if whole < x.size:  # the last, short frame: its energy as if the frame were whole (zeros after)
        rest = x[whole:]
        power = np.append(power, np.dot(rest, rest))
    return power < power.max() * 10 ** (_QUIET_DB / 10)


def _heard_starts(quiet: np.ndarray, starts: list[int], after_pause: list[bool], length: int) -> list[int]:
    """Word starts moved to where their sound begins.

    The first word starts with the clip. A word after punctuation whose sound began after a
    pause but before its mark (Piper's alignments can be late) moves back to that pause's
    end. Any other mark in silence (espeak marks a word at the start of its silent plosive
    closure, or before the pause that leads into it) moves forward to the first sound before
    the next word's mark. Starts stay in order.
    """
    heard = list(starts)
    for i, start in enumerate(starts):
        if i == 0:
            continue  # the clip is trimmed to its sound: its first word starts with it
        nxt = starts[i + 1] if i + 1 < len(starts) else length
        first, last = start // _FRAME, max(start, nxt - 1) // _FRAME
        onset = None
        if after_pause[i]:
            floor = max(heard[i - 1], start - _EARLY_ONSET) // _FRAME
            onset = _sound_after_pause(quiet, first, floor, heard[i - 1] // _FRAME)
        if onset is not None:
            heard[i] = onset * _FRAME
        elif quiet[first]:
            loud = np.flatnonzero(~quiet[first:last + 1])
            if loud.size:
                heard[i] = max(start, (first + int(loud[0])) * _FRAME)
        heard[i] = min(max(heard[i], heard[i - 1]), length)
    return heard


def _sound_after_pause(quiet: np.ndarray, first: int, floor: int, previous: int) -> int | None:
    """The frame where sound began after a pause of at least _MIN_PAUSE frames that ended
    after `floor` and before frame `first` (a mark), or None: no such pause, or no sound
    between it and the mark. The pause may reach back to `previous` (the word before)."""
    sound = not quiet[first]
    frame = first - 1
    while frame > floor:
        if not quiet[frame]:
            sound = True
            frame -= 1
            continue
        run = 0
        while frame - run > previous and quiet[frame - run]:
            run += 1
        if run >= _MIN_PAUSE:
            return frame + 1 if sound else None
        frame -= run
    return None


def _heard_ends(quiet: np.ndarray, starts: list[int], length: int) -> list[int]:
    """Where each word's sound stops: the end of its last sounding frame before the next word starts.

    Only frames that end by the next word's start count: the frame that word starts in holds
    its sound (espeak marks a word at its first sample, mid-frame), which is not this word's."""
    ends: list[int] = []
    nexts = starts[1:] + [length]
    for start, nxt in zip(starts, nexts):
        end = nxt
        if nxt > start:
            until = len(quiet) if nxt >= length else nxt // _FRAME
            loud = np.flatnonzero(~quiet[start // _FRAME:until])
            if loud.size:
                last = start // _FRAME + int(loud[-1]) + 1
                end = nxt if last >= until else min(nxt, last * _FRAME)  # sounding up to the next word
        ends.append(max(end, start))
    return ends


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


@dataclass(frozen=True)
class RawSpeech:
    """What an engine renders: unpolished samples, and where words start in them, as
    (character offset in the text, sample) marks, in the engine's order."""

    samples: np.ndarray
    marks: tuple[tuple[int, int], ...] = ()

    def __len__(self) -> int:
        return len(self.samples)
