"""The speech engines by name, each started once per process on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable

from coach.errors import SpeechError
from coach.speech.engine import DEFAULT_ENGINE, SpeechEngine
from coach.speech.espeak import EspeakEngine
from coach.speech.piper import PiperEngine  # imports piper-tts only when it starts

_ENGINE_TYPES: dict[str, Callable[[], SpeechEngine]] = {"espeak": EspeakEngine, "piper": PiperEngine}
_engines: dict[str, SpeechEngine] = {}
_engines_lock = threading.Lock()


def engine_names() -> list[str]:
    return sorted(_ENGINE_TYPES)


def get_engine(name: str = DEFAULT_ENGINE) -> SpeechEngine:
    """The process's one instance of a speech engine, started on first use."""
    if name not in _ENGINE_TYPES:
        raise SpeechError(f"unknown speech engine {name!r}: choose one of {', '.join(engine_names())}")
    with _engines_lock:
        if name not in _engines:
            _engines[name] = _ENGINE_TYPES[name]()
        return _engines[name]
