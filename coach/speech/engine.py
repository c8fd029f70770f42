"""What every speech engine provides, and how to ask one to speak.

An engine renders raw, unpolished audio; coach.speech.synthesis polishes and caches it.
Engines live one per module (espeak.py, piper.py) behind the `SpeechEngine` protocol,
and coach.speech.registry starts them by name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from coach.errors import SpeechError, UnknownVoiceError, one_line

MIN_SPEED, MAX_SPEED = 0.5, 2.0
ESPEAK_NORMAL_WPM = 175  # espeak-ng's own default; pyttsx3.init would force 200
DEFAULT_ENGINE = "espeak"


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    languages: tuple[str, ...]
    engine: str = DEFAULT_ENGINE


@dataclass(frozen=True)
class SpeechSettings:
    """How to speak. speed: 1.0 is the engine's normal pace (espeak: 175 wpm), 0.5 to 2.0."""

    speed: float = 1.0
    voice: str | None = None  # an id, name or language as `resolve_voice` accepts; None: the engine's default
    engine: str = DEFAULT_ENGINE

    def __post_init__(self) -> None:
        if not (isinstance(self.speed, (int, float)) and MIN_SPEED <= self.speed <= MAX_SPEED):
            raise SpeechError(f"speed {self.speed!r} is out of range: choose {MIN_SPEED} to {MAX_SPEED} (1.0 is normal)")


class SpeechEngine(Protocol):
    """What a text-to-speech engine provides. render() returns raw, unpolished audio."""

    name: str
    version: str  # changes whenever the same text may sound different
    default_voice: str

    def voices(self) -> list[Voice]: ...

    def render(self, text: str, voice: str | None, speed: float) -> np.ndarray:
        """float32 mono at SAMPLE_RATE; voice None means default_voice."""
        ...


def quote_text(text: str, limit: int = 60) -> str:
    """A text for an error message: one line, shortened, in double quotes."""
    flat = one_line(text)
    if len(flat) > limit:
        flat = flat[: limit - 3].rstrip() + "..."
    return f'"{flat}"'


def match_voice(name_or_id: str, voices: list[Voice], engine: str) -> str:
    """A voice id from an id, a name or a language, among these voices of `engine`
    (coach.speech.voices.resolve_voice asks a started engine for them)."""
    wanted = name_or_id.strip()
    for exact in (lambda v: v.id == wanted, lambda v: v.name == wanted):
        match = next((v for v in voices if exact(v)), None)
        if match:
            return match.id
    key = wanted.casefold()
    for v in voices:
        names = {v.id.casefold(), v.id.rsplit("/", 1)[-1].casefold(), v.name.casefold()}
        if key in names or key in {lang.casefold() for lang in v.languages}:
            return v.id
    raise UnknownVoiceError(
        f"unknown voice {wanted!r} for {engine}: try {', '.join(_suggest_voices(wanted, voices))} "
        "(`coach voices` lists them all)", wanted)


def _suggest_voices(wanted: str, voices: list[Voice], count: int = 4) -> list[str]:
    by_label = {v.name: v for v in voices} | {v.id: v for v in voices}
    # Only names that look like the one asked for; else the English voices, not Indonesian
    # and Finnish because their ids share a few letters with a typo.
    close = difflib.get_close_matches(wanted, by_label, n=count, cutoff=0.75)
    picked = list(dict.fromkeys(by_label[label] for label in close))
    english = [v for v in voices if any(lang.startswith("en") for lang in v.languages)]
    for v in english + voices:  # fill up with voices most users of the built-in routines want
        if len(picked) >= count:
            break
        if v not in picked:
            picked.append(v)
    return [f"{v.id!r} ({v.name})" for v in picked[:count]]
