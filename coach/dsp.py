"""Small, pure numpy audio helpers: trimming, loudness, fades.

Every function takes and returns float32 mono at SAMPLE_RATE and never changes
its input. Speech uses them through `polish_speech`; chimes and the mixer may
use the pieces.
"""

from __future__ import annotations

import logging

import numpy as np

from coach import audio
from coach.audio import SAMPLE_RATE, peak_db

log = logging.getLogger(__name__)

PEAK_CEILING_DB = -1.0  # headroom so a clip never touches full scale
SILENCE = float("-inf")

_FRAME_MS = 20  # loudness is measured in frames this long
_VOICED_RANGE_DB = 30.0  # frames this far below the loudest frame are pauses, not voice


# Voiced RMS every utterance is brought to. Piper's clips peak up to ~21.5 dB above their
# loudness (espeak's up to 19 dB), so -23 dB keeps every one of them under the -1 dBFS ceiling.
SPEECH_LOUDNESS_DB = -23.0
_TRIM_FRAME_MS = 5

def samples(ms: float) -> int:
    """Milliseconds to a whole number of samples at SAMPLE_RATE."""
    return int(round(ms * SAMPLE_RATE / 1000.0))


def to_db(amplitude: float) -> float:
    return 20.0 * float(np.log10(amplitude)) if amplitude > 0 else SILENCE


def rms_db(x: np.ndarray) -> float:
    """RMS level of the whole clip in dBFS (-inf for silence or an empty clip)."""
    if not x.size:
        return SILENCE
    return to_db(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))


def voiced_rms_db(x: np.ndarray) -> float:
    """RMS over the voiced part only: 20 ms frames within 30 dB of the loudest frame.

    Pauses between words would otherwise make a slow, pausing utterance measure
    quieter than a fast one that sounds just as loud.
    """
    frame = samples(_FRAME_MS)
    if x.size < frame:
        return rms_db(x)
    frames = x[: x.size - x.size % frame].reshape(-1, frame)
    energy = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frame
    loudest = float(energy.max())
    if loudest <= 0:
        return SILENCE
    voiced = energy[energy >= loudest * 10 ** (-_VOICED_RANGE_DB / 10)]
    return to_db(float(np.sqrt(np.mean(voiced))))


def trim_silence(x: np.ndarray, threshold_db: float = -45.0, keep_ms: float = 10) -> np.ndarray:
    """Cut leading and trailing silence, keeping `keep_ms` before and after the sound (see trim_bounds)."""
    start, end = trim_bounds(x, threshold_db, keep_ms)
    return x[start:end].copy()


def trim_bounds(x: np.ndarray, threshold_db: float = -45.0, keep_ms: float = 10) -> tuple[int, int]:
    """[start, end) of `x` that trim_silence keeps: the sound, with `keep_ms` before and after.

    Silence is quieter than `threshold_db` below the clip's own peak, so the result does
    not depend on how loud the engine happens to be. The sound starts in the first 5 ms
    frame whose RMS passes that threshold (and ends in the last): a lone faint tick before
    the words, which Piper sometimes leaves, is cut with the silence around it.
    An all-silent clip keeps nothing: (0, 0).
    """
    if not x.size:
        return 0, 0
    peak = audio.peak_amplitude(x)  # no |x| copy: only the edge frames need one
    if peak <= 0:
        return 0, 0
    level = peak * 10 ** (threshold_db / 20)
    frame = samples(_TRIM_FRAME_MS)
    # Mean power of each frame (the last one may be short), compared with level squared:
    # this runs for every utterance, so float32 and no padded copy.
    whole = x.size - x.size % frame
    frames = x[:whole].astype(np.float32, copy=False).reshape(-1, frame)
    power = np.einsum("ij,ij->i", frames, frames) / frame
    if whole < x.size:
        rest = x[whole:].astype(np.float32, copy=False)
        power = np.append(power, np.dot(rest, rest) / rest.size)
    loud_frames = np.flatnonzero(power >= level * level)
    if loud_frames.size:
        # A frame whose mean power passes level squared holds a sample that passes level.
        lo, hi = loud_frames[0] * frame, min((loud_frames[-1] + 1) * frame, x.size)
        head, tail = np.abs(x[lo:lo + frame]), np.abs(x[max(hi - frame, lo):hi])
        first = lo + int(np.argmax(head >= level))
        last = hi - 1 - int(np.argmax(tail[::-1] >= level))
    else:  # only isolated clicks: fall back to single samples
        loud = np.abs(x) >= level
        first, last = int(np.argmax(loud)), x.size - 1 - int(np.argmax(loud[::-1]))
    keep = samples(keep_ms)
    start = max(first - keep, 0)
    end = min(last + 1 + keep, x.size)
    return start, end


def normalize_loudness(x: np.ndarray, target_db: float = SPEECH_LOUDNESS_DB) -> np.ndarray:
    """Scale so the voiced RMS is `target_db`, but never let the peak pass -1 dBFS.

    A clip whose peaks would pass the ceiling comes out quieter than the target
    (logged at debug level) rather than clipped or distorted by a limiter.
    """
    return np.multiply(x, np.float32(loudness_gain(x, target_db)), dtype=np.float32)


def loudness_gain(x: np.ndarray, target_db: float = SPEECH_LOUDNESS_DB) -> float:
    """The factor normalize_loudness scales `x` by (1.0 for silence)."""
    level = voiced_rms_db(x)
    if level == SILENCE:
        return 1.0
    gain_db = target_db - level
    peak_after = peak_db(x) + gain_db
    if peak_after > PEAK_CEILING_DB:
        log.debug("loudness %.1f dB short of target: peak would reach %.1f dBFS", peak_after - PEAK_CEILING_DB, peak_after)
        gain_db -= peak_after - PEAK_CEILING_DB
    return 10 ** (gain_db / 20)


_FADE_MS = 5


def fade_edges(x: np.ndarray, ms: float = _FADE_MS) -> np.ndarray:
    """Raised-cosine fade in and out of `ms` each, so a clip starts and ends at zero: no click."""
    return audio.fade_edges(x, ms / 1000.0)


def polish_speech(x: np.ndarray) -> np.ndarray:
    """Make a raw engine clip ready for the timeline: trimmed, at the target loudness, faded."""
    return polish_speech_from(x)[0]


def polish_speech_from(x: np.ndarray) -> tuple[np.ndarray, int]:
    """polish_speech, and the sample of `x` the polished clip starts at (what trimming cut)."""
    start, end = trim_bounds(x)
    kept = x[start:end]
    # One new array, made by the levelling itself, then faded in place: this runs over
    # every second of speech.
    clip = np.multiply(kept, np.float32(loudness_gain(kept)) if kept.size else np.float32(1), dtype=np.float32)
    if clip.size:
        audio.fade_edges(clip, _FADE_MS / 1000.0, in_place=True)
    return clip, start
