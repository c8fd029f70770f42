"""coach.speech.registry.start_early: Piper's voice model loading on a thread while `coach start` imports the rest."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from coach.errors import SpeechError
from coach.speech import SpeechCache, cache_dir, cache_key, registry
from coach.speech import piper as piper_engine

COACH = Path(sys.executable).parent / "coach"


class LoadingEngine:
    """An engine whose load() says on which thread it ran."""

    name = "loading"
    default_voice = "v1"
    version = "loading 1"
    loads: list[tuple[str | None, str]] = []
    started = 0

    def __init__(self) -> None:
        LoadingEngine.started += 1

    def load(self, voice=None) -> None:
        LoadingEngine.loads.append((voice, threading.current_thread().name))


class BrokenEngine:
    def __init__(self) -> None:
        raise SpeechError("not installed (a stand-in)")


@pytest.fixture
def engines(monkeypatch):
    LoadingEngine.loads, LoadingEngine.started = [], 0
    monkeypatch.setattr(registry, "_engines", {})
    monkeypatch.setattr(registry, "_early", [])
    monkeypatch.setattr(registry, "_ENGINE_TYPES", {"loading": LoadingEngine, "broken": BrokenEngine,
                                                   **registry._ENGINE_TYPES})
    monkeypatch.setattr(registry, "_STARTS_EARLY", {"loading", "broken"})


def join_early() -> None:
    for thread in registry._early:
        thread.join(10)


def test_the_engine_starts_and_loads_its_voice_on_another_thread_once(engines):
    registry.start_early("loading", "v2")
    join_early()
    assert LoadingEngine.loads == [("v2", "loading-early-start")]
    engine = registry.get_engine("loading")  # the session's own start gets that same engine
    assert isinstance(engine, LoadingEngine) and LoadingEngine.started == 1
    registry.start_early("loading", "v2")
    assert len(registry._early) == 1


def test_no_model_load_when_the_first_clip_is_cached(engines, cold_cache):
    engine = registry.get_engine("loading")
    SpeechCache(cache_dir()).put(cache_key("Welcome.", "v1", 0.8, engine), np.zeros(100, np.float32))
    registry.start_early("loading", None, ("Welcome.", 0.8))
    join_early()
    assert LoadingEngine.loads == []
    registry._early.clear()
    registry.start_early("loading", None, ("Welcome.", 1.0))  # another speed: not cached
    join_early()
    assert LoadingEngine.loads == [(None, "loading-early-start")]


def test_an_engine_that_cannot_start_is_left_for_the_session_to_report(engines):
    registry.start_early("broken")
    join_early()
    with pytest.raises(SpeechError, match="not installed"):
        registry.get_engine("broken")


def test_espeak_never_starts_early(engines):
    registry.start_early("espeak")
    assert registry._early == [] and "espeak" not in registry._engines


@pytest.mark.skipif(piper_engine.missing_reason() is not None, reason="piper-tts not installed")
def test_a_start_that_fails_while_the_model_loads_exits_cleanly(cold_cache):
    # The early load has begun when --side is checked; the exit waits for it instead of crashing.
    args = [str(COACH), "start", "leg-stretches", "--engine", "piper", "--quiet", "--side", "middle"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode not in (0, -11, 139) and run.returncode < 128
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --side must be one of")
