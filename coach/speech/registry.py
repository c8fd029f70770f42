"""The speech engines by name, each started once per process on first use."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable

from coach.errors import SpeechError
from coach.speech.engine import DEFAULT_ENGINE, SpeechEngine, match_voice
from coach.speech.espeak import EspeakEngine
from coach.speech.piper import PiperEngine  # imports piper-tts only when it starts

_ENGINE_TYPES: dict[str, Callable[[], SpeechEngine]] = {"espeak": EspeakEngine, "piper": PiperEngine}
_engines: dict[str, SpeechEngine] = {}
_engines_lock = threading.Lock()


def engine_names() -> list[str]:
    return sorted(_ENGINE_TYPES)


def cache_identity(engine: str, voice: str | None) -> tuple[str, str] | None:
    """(engine version, voice id) for a cache key without starting the engine, when the
    engine can tell (Piper from its packages, espeak from libespeak-ng and what its last
    start found); None when only a started engine knows, or the engine is not installed.
    Raises SpeechError for a voice the engine does not have."""
    kind = _ENGINE_TYPES.get(engine)
    identity = getattr(kind, "identity", None)
    known = identity() if identity is not None else None
    if known is None:
        return None
    version, default_voice, voices = known
    if not voice:
        return version, default_voice
    if voices is None:  # a voice by name: only the started engine lists its voices
        return None
    return version, match_voice(voice, voices, engine)


def get_engine(name: str = DEFAULT_ENGINE) -> SpeechEngine:
    """The process's one instance of a speech engine, started on first use."""
    if name not in _ENGINE_TYPES:
        raise SpeechError(f"unknown speech engine {name!r}: choose one of {', '.join(engine_names())}")
    with _engines_lock:
        if name not in _engines:
            _engines[name] = _ENGINE_TYPES[name]()
        return _engines[name]


# Engines that may start, voice model and all, on a thread of their own while coach imports
# the rest of what a session needs: Piper's model load is about 0.2 s of CPU inside
# onnxruntime, which lets go of the GIL. Not espeak (about 20 ms): its start points file
# descriptors 1 and 2 at /dev/null for a moment, which would swallow an error line the main
# thread printed meanwhile.
_STARTS_EARLY = {"piper"}
_early: list[threading.Thread] = []


def start_early(name: str | None, voice: str | None = None, first: tuple[str, float] | None = None) -> None:
    """Begin starting engine `name` and loading its voice now, on a thread; nothing when it does not
    start early. With `first` (the session's first text and speed): only when that clip is not
    in the speech cache, since then the first sound waits for the model; otherwise it loads as
    before, when the first missing clip comes up, while the session already plays. Never
    raises: whatever goes wrong is reported by the session's own start."""
    if name not in _STARTS_EARLY or _early:
        return

    def start() -> None:
        try:
            if first is not None and _is_cached(name, voice, *first):
                return
            get_engine(name).load(voice)
        except Exception:  # noqa: BLE001 - only a head start; the real start says what is wrong
            pass

    thread = threading.Thread(target=start, name=f"{name}-early-start", daemon=True)
    _early.append(thread)
    thread.start()
    # onnxruntime still loading while Python shuts down can crash the process (a command that
    # fails at once, a bad routine): its exit waits for the load instead.
    atexit.register(thread.join, 10.0)


def _is_cached(name: str, voice: str | None, text: str, speed: float) -> bool:
    """Whether the clip is in the speech cache: looked up without starting the engine where
    cache_identity can tell (a cached first clip then needs none of it), else after."""
    from coach.speech.cache import SpeechCache, cache_dir, cache_key, key_for

    known = cache_identity(name, voice)
    if known is not None:
        key = key_for(text, known[1], speed, name, known[0])
    else:
        engine = get_engine(name)
        key = cache_key(text, voice or engine.default_voice, speed, engine)
    return SpeechCache(cache_dir()).path(key).exists()
