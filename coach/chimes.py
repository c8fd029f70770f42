"""Chime clips: the built-in sounds/ WAVs, or a routine's own, level-set for mixing.

Every chime comes out the same way whatever its source: float32 mono at SAMPLE_RATE,
at most MAX_CHIME_SECONDS long, with short fades, and its peak at CHIME_PEAK_DB.
Speech is normalised elsewhere to peaks near -3 dBFS, so chimes sit clearly under
the voice and never startle.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from coach.audio import SAMPLE_RATE, db_to_gain, fade_edges, peak_db, read_wav
from coach.errors import ChimeError, one_line

# Must match coach.routine.model.CHIME_KINDS (a test checks).
CHIME_KINDS = ("hold_start", "midpoint", "side_switch", "rest_start", "rest_end")
CHIME_PEAK_DB = -12.0
CHIME_FADE_SECONDS = 0.005
MAX_CHIME_SECONDS = 2.0


def builtin_sounds_dir() -> Path:
    """Where the built-in chime WAVs live: coach/sounds in a wheel, else the repo's sounds/."""
    package = Path(__file__).resolve().parent  # not importlib.resources: see builtin_cues_dir
    packaged = package / "sounds"
    if packaged.is_dir():
        return packaged
    return package.parent / "sounds"


def load_chimes(custom: Mapping[str, Path] | None = None) -> dict[str, np.ndarray]:
    """One level-set clip per CHIME_KINDS entry; `custom` replaces the built-in ones it names.

    A bad custom file raises a one-line ChimeError like
    `chimes.midpoint: bell.mp3 is not a WAV file ...`.
    """
    custom = dict(custom or {})
    unknown = sorted(set(custom) - set(CHIME_KINDS))
    if unknown:
        raise ChimeError(f"unknown chime kind {unknown[0]!r}; use one of {', '.join(CHIME_KINDS)}")
    sounds = builtin_sounds_dir()
    chimes = {}
    for kind in CHIME_KINDS:
        if kind in custom:
            try:
                chimes[kind] = _load_chime(Path(custom[kind]), f"chimes.{kind}")
            except ChimeError as err:
                raise ChimeError(str(err), kind=kind) from None
        else:
            try:
                chimes[kind] = _load_chime(sounds / f"{kind}.wav", f"built-in chime {kind}")
            except ChimeError as err:
                # Only a broken install or checkout gets here; say how to restore the files.
                raise ChimeError(f"{err} (or reinstall coach; in a checkout run `make chimes`)") from None
    return chimes


def _load_chime(path: Path, label: str) -> np.ndarray:
    try:
        samples = read_wav(path)
    except ChimeError as err:
        raise ChimeError(one_line(f"{label}: {err}")) from None
    seconds = len(samples) / SAMPLE_RATE
    if seconds > MAX_CHIME_SECONDS:
        raise ChimeError(one_line(
            f"{label}: {path} is {seconds:.2f} s long, but a chime may be at most {MAX_CHIME_SECONDS:g} s; "
            f"trim it, e.g. `sox {shlex.quote(str(path))} short.wav trim 0 {MAX_CHIME_SECONDS:g}`"))
    samples = fade_edges(samples, CHIME_FADE_SECONDS)
    level = peak_db(samples)
    if level < -60.0:
        raise ChimeError(one_line(
            f"{label}: {path} is silent (peak {level:.0f} dBFS); pick a WAV with an audible sound"))
    return (samples * db_to_gain(CHIME_PEAK_DB - level)).astype(np.float32)
