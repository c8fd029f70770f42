"""Text to speech: each utterance becomes float32 PCM before it is scheduled, cached on disk.

An engine (espeak-ng through pyttsx3, or Piper) renders raw audio; `synthesize_all`
polishes it (coach.dsp) and keeps it in a cache keyed by everything that changes the
sound, so a second run of the same routine synthesizes nothing.

Where things are: engine.py (the engine interface, Voice, SpeechSettings), espeak.py and
piper.py (one module per engine), registry.py (engines by name), voices.py (voice lookup),
clip.py (Clip, Word: samples and the time of every word), synthesis.py (render, polish,
time the words and store one text), cache.py (the on-disk cache),
scheduler.py (which texts, in what order, here and in the helper process), helper.py
(the helper process itself).
"""

from coach.speech.clip import Clip, RawSpeech, Word
from coach.speech.cache import PROCESSING_VERSION, SpeechCache, cache_dir, cache_key
from coach.speech.engine import (
    DEFAULT_ENGINE,
    ESPEAK_NORMAL_WPM,
    MAX_SPEED,
    MIN_SPEED,
    SpeechEngine,
    SpeechSettings,
    Voice,
)
from coach.speech.espeak import NO_ESPEAK, EspeakEngine, quiet_output
from coach.speech.registry import engine_names, get_engine
from coach.speech.scheduler import synthesize, synthesize_all, synthesize_clips
from coach.speech.synthesis import synthesize_into
from coach.speech.voices import list_all_voices, list_voices, resolve_voice, voice_for_language

__all__ = [
    "DEFAULT_ENGINE", "ESPEAK_NORMAL_WPM", "MAX_SPEED", "MIN_SPEED", "NO_ESPEAK", "PROCESSING_VERSION",
    "Clip", "EspeakEngine", "RawSpeech", "Word", "SpeechCache", "SpeechEngine", "SpeechSettings", "Voice",
    "cache_dir", "cache_key", "engine_names", "get_engine", "list_all_voices", "list_voices",
    "quiet_output", "resolve_voice", "synthesize", "synthesize_all", "synthesize_clips", "synthesize_into",
    "voice_for_language",
]
