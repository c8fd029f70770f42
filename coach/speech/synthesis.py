"""One text from engine to cache: render, polish (trim, level), store."""

from __future__ import annotations

import numpy as np

from coach.dsp import polish_speech
from coach.errors import SpeechError
from coach.speech.cache import SpeechCache, from_int16, to_int16
from coach.speech.engine import SpeechEngine, quote_text


def synthesize_into(cache: SpeechCache, key: str, engine: SpeechEngine, text: str, voice: str, speed: float) -> np.ndarray:
    """Render, polish and cache one text; returns exactly what a later run reads from the cache."""
    pcm = to_int16(polish_speech(engine.render(text, voice, speed)))
    if not np.any(pcm):  # rarely espeak drops an utterance under heavy load: one more try
        pcm = to_int16(polish_speech(engine.render(text, voice, speed)))
    if not np.any(pcm):
        raise SpeechError(f"{engine.name} made no sound for {quote_text(text)}: use words it can pronounce")
    return from_int16(cache.put(key, pcm))
