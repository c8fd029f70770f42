"""One text from engine to cache: render, polish (trim, level), time its words, store."""

from __future__ import annotations

import numpy as np

from coach.dsp import polish_speech_from
from coach.errors import SpeechError
from coach.speech.cache import SpeechCache
from coach.speech.clip import Clip, RawSpeech, place_words, to_int16
from coach.speech.engine import SpeechEngine, quote_text


def polish_clip(text: str, raw: RawSpeech) -> tuple[np.ndarray, tuple]:
    """int16 samples ready for the timeline, and the words placed in them (after trimming)."""
    polished, cut = polish_speech_from(raw.samples)
    pcm = to_int16(polished)
    # Marks before what trimming kept mean "at the start"; marks past its end are dropped.
    marks = [(offset, max(sample - cut, 0)) for offset, sample in raw.marks]
    return pcm, place_words(text, marks, len(pcm), sound=polished)


def synthesize_into(cache: SpeechCache, key: str, engine: SpeechEngine, text: str, voice: str, speed: float) -> Clip:
    """Render, polish and cache one text; returns exactly what a later run reads from the cache."""
    pcm, words = polish_clip(text, engine.render(text, voice, speed))
    if not np.any(pcm):  # rarely espeak drops an utterance under heavy load: one more try
        pcm, words = polish_clip(text, engine.render(text, voice, speed))
    if not np.any(pcm):
        raise SpeechError(f"{engine.name} made no sound for {quote_text(text)}: use words it can pronounce")
    stored_pcm, stored_words = cache.put(key, pcm, words)
    return Clip.from_pcm16(stored_pcm, stored_words)
