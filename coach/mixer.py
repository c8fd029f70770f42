"""Turning timeline events into sound: overlapping sounds are grouped and pre-mixed.

A segment is a run of events whose audio overlaps (a chime still ringing when a cue
starts). The live player plays one pre-mixed segment at a time, so a device without
hardware mixing never has to open two streams; the WAV export writes the same segments
with silence between them.

Loudness: one gain for the whole session, the same live and exported, fixed before the
speech is known (a live session starts with its first clip): every speech clip peaks at
-1 dBFS at most (coach.dsp levels it), so only a louder chime sets it, and it is 1 for
coach's own chimes; the speech keeps the level coach.dsp gave it, the same in every
session. An export also knows where two sounds overlap (a chime still ringing as the next
starts) and lowers the gain if that moment would pass -1 dBFS, so a file never clips.
At a gain of 1 (and full volume) an export writes each clip as the speech cache stores it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from coach.audio import mix_into, peak_amplitude, to_int16
from coach.timeline import Event, Timeline

PEAK_TARGET = 10 ** (-1.0 / 20)  # -1 dBFS: loud enough, never clipping


@dataclass(frozen=True)
class Segment:
    start: int
    end: int
    events: tuple[Event, ...]

    @property
    def length(self) -> int:
        return self.end - self.start


def segments(timeline: Timeline) -> list[Segment]:
    """Audible events grouped into runs whose sounds overlap, in time order."""
    groups: list[Segment] = []
    for event in sorted(timeline.audible(), key=lambda e: e.start):
        if groups and event.start < groups[-1].end:
            last = groups[-1]
            groups[-1] = Segment(last.start, max(last.end, event.end), last.events + (event,))
        else:
            groups.append(Segment(event.start, event.end, (event,)))
    return groups


def clip_for(event: Event, speech: Mapping[str, np.ndarray], chimes: Mapping[str, np.ndarray]) -> np.ndarray:
    """What `event` plays: its speech or chime clip, cut to the event's length (a view)."""
    clip = speech[event.text] if event.kind == "speech" else chimes[event.text]
    return clip[: event.length]


def mix_segment(segment: Segment, speech: Mapping[str, np.ndarray],
                chimes: Mapping[str, np.ndarray], gain: float = 1.0) -> np.ndarray:
    if len(segment.events) == 1:  # most segments: one sound, nothing to mix it with
        only = segment.events[0]
        return np.multiply(clip_for(only, speech, chimes), np.float32(gain), dtype=np.float32)
    out = np.zeros(segment.length, dtype=np.float32)
    for event in segment.events:
        mix_into(out, clip_for(event, speech, chimes), event.start - segment.start)
    if gain != 1.0:
        out *= np.float32(gain)
    return out


def fixed_gain(chimes: Mapping[str, np.ndarray]) -> float:
    """The session gain before the speech is known: see the module docstring."""
    loudest = max([PEAK_TARGET] + [peak_amplitude(clip) for clip in chimes.values()])
    return PEAK_TARGET / loudest


def session_gain(segs: list[Segment], speech, chimes, volume: float = 1.0) -> float:
    """The exported session's gain, times the volume: fixed_gain, lowered only so that no
    moment where sounds overlap passes -1 dBFS."""
    gain = fixed_gain(chimes)
    overlaps = max((segment_peak(s, speech, chimes) for s in segs if len(s.events) > 1), default=0.0)
    if overlaps * gain > PEAK_TARGET:
        gain = PEAK_TARGET / overlaps
    return gain * volume


def segment_peak(segment: Segment, speech, chimes) -> float:
    """The loudest sample of the mixed segment. Most segments hold one sound, whose peak
    needs no mixing: an hour's export then reads each clip once instead of mixing it twice."""
    if len(segment.events) > 1:
        return peak_amplitude(mix_segment(segment, speech, chimes))
    event = segment.events[0]
    return peak_amplitude(clip_for(event, speech, chimes))


def session_sounds(timeline: Timeline, speech, chimes,
                   volume: float = 1.0) -> Iterator[tuple[int, np.ndarray]]:
    """(start sample, mixed float32 audio at the session gain) for each segment, in order;
    everything between them is silence."""
    segs = segments(timeline)
    gain = session_gain(segs, speech, chimes, volume)
    for seg in segs:
        yield seg.start, mix_segment(seg, speech, chimes, gain)


def session_pcm16(timeline: Timeline, speech, chimes, volume: float = 1.0,
                  workers: int = 2, speech_pcm16: Mapping[str, np.ndarray] | None = None
                  ) -> Iterator[tuple[int, np.ndarray]]:
    """session_sounds as 16-bit samples, the same ones `to_int16` makes of them, each
    segment made in one pass where it can, by `workers` threads, in order.

    An hour's export has about 30 million samples of sound. At a gain of 1, a clip whose
    int16 samples are known (speech_pcm16: as the cache stores them, speech = pcm16 / 32768)
    is written as it is: nothing to compute. Otherwise the gain and the 16-bit scale go in
    one multiplication, and no clipping or NaN check is needed for a segment whose peak is
    known to stay within full scale (scaling by 32768, a power of two, is exact, so the
    samples are bit for bit those of to_int16). numpy lets go of the GIL on arrays this
    long, so a second thread makes the next segments while the caller writes.
    """
    segs = segments(timeline)
    gain = session_gain(segs, speech, chimes, volume)
    scale = np.float32(gain) * np.float32(32768.0)
    stored = speech_pcm16 or {}

    def pcm(index: int) -> np.ndarray:
        seg = segs[index]
        only = seg.events[0] if len(seg.events) == 1 else None
        original = stored.get(only.text) if only is not None and only.kind == "speech" else None
        if original is not None and gain <= 1.0:
            # From int16, so within full scale at any gain up to 1, and never NaN.
            if scale == 32768.0:
                return original[: only.length]
            scaled = np.multiply(original[: only.length], scale / np.float32(32768.0), dtype=np.float32)
        elif not segment_peak(seg, speech, chimes) * gain < 1.0:  # past full scale, NaN or infinite: the careful way
            return to_int16(mix_segment(seg, speech, chimes, gain), scratch=True)
        elif only is not None:
            scaled = np.multiply(clip_for(only, speech, chimes), scale, dtype=np.float32)
        else:
            scaled = mix_segment(seg, speech, chimes)
            scaled *= scale
        np.rint(scaled, out=scaled)
        return scaled.astype(np.int16)

    if workers <= 1 or len(segs) < 2:
        for index, seg in enumerate(segs):
            yield seg.start, pcm(index)
        return
    from concurrent.futures import ThreadPoolExecutor  # the export's only: not on a live session's way to its first sound

    with ThreadPoolExecutor(max_workers=workers) as pool:
        ahead: deque = deque()
        for index in range(len(segs)):
            ahead.append(pool.submit(pcm, index))
            if len(ahead) > 2 * workers:  # a few segments ahead, never the whole session in memory
                yield segs[index - len(ahead) + 1].start, ahead.popleft().result()
        first = len(segs) - len(ahead)
        for offset, future in enumerate(ahead):
            yield segs[first + offset].start, future.result()


def render_session(timeline: Timeline, speech, chimes, volume: float = 1.0) -> np.ndarray:
    """The whole session in memory (tests, short routines)."""
    out = np.zeros(timeline.length, dtype=np.float32)
    for start, sound in session_sounds(timeline, speech, chimes, volume):
        out[start:start + len(sound)] = sound
    return out
