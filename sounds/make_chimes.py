"""Generate the built-in chimes: sounds/hold_start.wav, midpoint.wav, side_switch.wav,
rest_start.wav and rest_end.wav.

Run `make chimes` (or `python sounds/make_chimes.py`) after changing a sound here;
tests/test_chimes.py fails when the committed WAVs and this script disagree.

Each chime is a sum of exponentially decaying sine partials, like a struck bell,
with a few-millisecond raised-cosine attack so it starts softly and a short fade at
the end so it never stops with a click. Only numpy and the standard library are
used, and nothing is random, so the output is the same on every run.
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np

RATE = 22050  # coach.audio.SAMPLE_RATE: the rate of espeak-ng's speech
PEAK = 10 ** (-1 / 20)  # -1 dBFS; coach re-levels chimes on load anyway
ATTACK_SECONDS = 0.004
END_FADE_SECONDS = 0.1

# (frequency ratio to the note, relative amplitude, decay time constant in seconds)
# A singing bowl: strongly inharmonic partials, each a pair detuned by a fraction
# of a hertz so the tone slowly beats, and a long low hum.
BOWL = ((1.0, 1.0, 0.8), (2.71, 0.45, 0.5), (5.15, 0.2, 0.3), (8.2, 0.08, 0.18))
BOWL_BEAT = 0.0025  # relative detune of each partial's twin: about a 1 Hz shimmer
BOWL_TWIN = 0.3  # the twin's share of a partial: a gentle wobble, never a full cancellation
# A small high bell or tingsha: a bright strike that dies fast.
DING = ((1.0, 1.0, 0.3), (2.0, 0.12, 0.15), (2.76, 0.22, 0.09), (5.4, 0.05, 0.04))
# A soft mallet on a tuned bar: nearly harmonic, warm.
BAR = ((1.0, 1.0, 0.45), (2.0, 0.28, 0.25), (3.0, 0.1, 0.15), (4.2, 0.05, 0.08))

C4, G4, E5, B5, E6 = 261.63, 392.00, 659.26, 987.77, 1318.51


def hold_start() -> np.ndarray:
    """A singing bowl on G4: settle in and hold."""
    out = np.zeros(_length(1.9))
    for ratio, amp, decay in BOWL:
        _add_partial(out, 0.0, G4 * ratio, amp * (1 - BOWL_TWIN), decay)
        _add_partial(out, 0.0, G4 * ratio * (1 + BOWL_BEAT), amp * BOWL_TWIN, decay)
    return _finish(out)


def midpoint() -> np.ndarray:
    """One light high ding on E6: halfway, keep going."""
    out = np.zeros(_length(1.0))
    _add_note(out, 0.0, E6, DING, 1.0)
    return _finish(out)


def side_switch() -> np.ndarray:
    """Two rising notes, E5 then B5 (a fifth): change sides."""
    out = np.zeros(_length(1.5))
    _add_note(out, 0.0, E5, BAR, 0.8)
    _add_note(out, 0.22, B5, BAR, 1.0)
    return _finish(out)


def rest_start() -> np.ndarray:
    """A low singing bowl on C4, softer in its upper partials: lie still now."""
    out = np.zeros(_length(1.95))
    for ratio, amp, decay in BOWL:
        amp *= 0.5 if ratio > 1 else 1.0
        _add_partial(out, 0.0, C4 * ratio, amp * (1 - BOWL_TWIN), decay * 1.2)
        _add_partial(out, 0.0, C4 * ratio * (1 + BOWL_BEAT), amp * BOWL_TWIN, decay * 1.2)
    return _finish(out)


def rest_end() -> np.ndarray:
    """Two soft bars rising from G4 to E5, slower than the side switch: the rest is over."""
    out = np.zeros(_length(1.8))
    _add_note(out, 0.0, G4, BAR, 0.8)
    _add_note(out, 0.45, E5, BAR, 1.0)
    return _finish(out)


CHIMES = {"hold_start": hold_start, "midpoint": midpoint, "side_switch": side_switch,
          "rest_start": rest_start, "rest_end": rest_end}


def synthesize() -> dict[str, np.ndarray]:
    """Every chime as int16 samples at RATE, exactly as written to the WAVs."""
    return {name: make() for name, make in CHIMES.items()}


def generate(out_dir: Path) -> list[Path]:
    """Write every chime as a 22050 Hz mono 16-bit WAV into out_dir; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, samples in synthesize().items():
        path = out_dir / f"{name}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(samples.astype("<i2").tobytes())
        paths.append(path)
    return paths


def _length(seconds: float) -> int:
    return int(round(seconds * RATE))


def _add_note(out: np.ndarray, start: float, freq: float, partials, amp: float) -> None:
    for ratio, rel_amp, decay in partials:
        _add_partial(out, start, freq * ratio, amp * rel_amp, decay)


def _add_partial(out: np.ndarray, start: float, freq: float, amp: float, decay: float) -> None:
    """Add one decaying sine starting at `start` seconds, with a soft raised-cosine attack."""
    first = _length(start)
    t = np.arange(len(out) - first) / RATE
    envelope = amp * np.exp(-t / decay)
    attack = min(_length(ATTACK_SECONDS), len(t))
    envelope[:attack] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    out[first:] += envelope * np.sin(2 * np.pi * freq * t)


def _finish(out: np.ndarray) -> np.ndarray:
    """Fade the tail to silence, normalise the peak to PEAK, round to int16."""
    fade = _length(END_FADE_SECONDS)
    out[-fade:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    out *= PEAK / np.max(np.abs(out))
    return np.round(out * 32767).astype(np.int16)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for written in generate(target):
        print(written)
