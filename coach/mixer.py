"""Turning timeline events into sound: overlapping sounds are grouped and pre-mixed.

A segment is a run of events whose audio overlaps (a chime still ringing when a cue
starts). The live player plays one pre-mixed segment at a time, so a device without
hardware mixing never has to open two streams; the WAV export writes the same segments
with silence between them. One gain for the whole session keeps live and export alike.
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


def session_gain(segs: list[Segment], speech, chimes, volume: float = 1.0) -> float:
    """One gain that brings the loudest moment of the session to -1 dBFS, times the volume."""
    return gain_for_peak(max((segment_peak(s, speech, chimes) for s in segs), default=0.0), volume)


def gain_for_peak(peak: float, volume: float = 1.0) -> float:
    return (PEAK_TARGET / peak if peak > 0 else 1.0) * volume


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
                  workers: int = 2) -> Iterator[tuple[int, np.ndarray]]:
    """session_sounds as 16-bit samples, the same ones `to_int16` makes of them, each
    segment made in one pass where it can, by `workers` threads, in order.

    An hour's export converts about 30 million samples: the gain and the 16-bit scale
    go in one multiplication, and no clipping or NaN check is needed for a segment whose
    peak is known to stay within full scale (scaling by 32768, a power of two, is exact,
    so the samples are bit for bit those of to_int16). numpy lets go of the GIL on arrays
    this long, so a second thread makes the next segments while the caller writes.
    """
    segs = segments(timeline)
    peaks = [segment_peak(seg, speech, chimes) for seg in segs]
    gain = gain_for_peak(max(peaks, default=0.0), volume)
    scale = np.float32(gain) * np.float32(32768.0)

    def pcm(index: int) -> np.ndarray:
        seg = segs[index]
        if not peaks[index] * gain < 1.0:  # past full scale, NaN or infinite: the careful way
            return to_int16(mix_segment(seg, speech, chimes, gain), scratch=True)
        if len(seg.events) == 1:
            scaled = np.multiply(clip_for(seg.events[0], speech, chimes), scale, dtype=np.float32)
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
