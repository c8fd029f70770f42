"""SpeechAhead's worker steps back behind playback once the first clip is ready."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from coach.audio import SAMPLE_RATE
from coach.speech.ahead import WORKER_NICE, SpeechAhead
from coach.errors import SpeechError
from coach.speech.cache import SpeechCache
from coach.speech.clip import RawSpeech


class ThreadedEngine:
    """A fake engine that, like espeak-ng, starts a thread of its own when it starts; it
    notes the nice value of the rendering thread and of its own thread at each render."""

    name = "fake"
    version = "1"
    default_voice = "default"

    def __init__(self) -> None:
        self.nices: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread_id: int | None = None
        started = threading.Event()

        def engine_thread() -> None:
            self._thread_id = threading.get_native_id()
            started.set()
            self._stop.wait()

        threading.Thread(target=engine_thread, daemon=True).start()
        started.wait()

    def voices(self):
        return []

    def render(self, text: str, voice: str | None, speed: float) -> RawSpeech:
        self.nices.append((os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
                           os.getpriority(os.PRIO_PROCESS, self._thread_id)))
        t = np.arange(SAMPLE_RATE // 5) / SAMPLE_RATE
        return RawSpeech((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))

    def close(self) -> None:
        self._stop.set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have their own nice value on Linux")
def test_the_worker_and_its_engine_threads_run_at_a_lower_priority_after_the_first_clip(tmp_path):
    engines: list[ThreadedEngine] = []

    def factory(name: str) -> ThreadedEngine:
        engines.append(ThreadedEngine())
        return engines[-1]

    base = os.getpriority(os.PRIO_PROCESS, 0)
    speech = SpeechAhead("fake", None, engine_factory=factory, cache=SpeechCache(tmp_path))
    wanted = [("First line.", 1.0), ("Second line.", 1.0), ("Third line.", 1.0)]
    try:
        speech.want(wanted)
        assert speech.wait_for(wanted, timeout=30)
    finally:
        speech.close()
        for engine in engines:
            engine.close()
    first, *later = engines[0].nices
    assert first == (base, base)  # the first line, which the first sound waits for, at full priority
    assert later and all(nice == (max(base, WORKER_NICE),) * 2 for nice in later), engines[0].nices
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the player's thread keeps its own


class CountingEngine:
    """A fake engine that notes the time of every render."""

    name = "fake"
    version = "1"
    default_voice = "default"

    def __init__(self) -> None:
        self.rendered: list[tuple[str, float]] = []

    def voices(self):
        return []

    def render(self, text: str, voice: str | None, speed: float) -> RawSpeech:
        self.rendered.append((text, time.monotonic()))
        return RawSpeech(np.full(SAMPLE_RATE // 10, 0.2, dtype=np.float32))


def test_held_after_its_first_clip_the_worker_waits_for_the_first_sound(tmp_path, monkeypatch):
    # A live session's worker makes the first clip and then leaves the process's thread to
    # open the device and start the sound; the rest follows once the session says so.
    monkeypatch.setattr("coach.speech.ahead.FIRST_SOUND_WAIT", 30.0)
    engine = CountingEngine()
    speech = SpeechAhead("fake", None, engine_factory=lambda name: engine, cache=SpeechCache(tmp_path),
                         hold_after_first=True)
    wanted = [("First line.", 1.0), ("Second line.", 1.0), ("Third line.", 1.0)]
    try:
        speech.want(wanted)
        assert speech.wait_for(wanted[:1], timeout=30)
        assert not speech.wait_for(wanted[1:], timeout=0.3)  # held: nothing more yet
        assert [text for text, _ in engine.rendered] == ["First line."]
        released = time.monotonic()
        speech.first_sound_playing()
        assert speech.wait_for(wanted, timeout=30)
    finally:
        speech.close()
    assert [text for text, _ in engine.rendered] == ["First line.", "Second line.", "Third line."]
    assert engine.rendered[1][1] >= released


def test_the_hold_is_bounded_and_off_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.setattr("coach.speech.ahead.FIRST_SOUND_WAIT", 0.2)
    wanted = [("First line.", 1.0), ("Second line.", 1.0)]
    for hold in (True, False):
        speech = SpeechAhead("fake", None, engine_factory=lambda name: CountingEngine(),
                             cache=SpeechCache(tmp_path / str(hold)), hold_after_first=hold)
        try:
            speech.want(wanted)
            # Never told of a first sound (a session that never plays one): the rest still comes.
            assert speech.wait_for(wanted, timeout=30)
        finally:
            speech.close()


def test_closing_a_held_worker_ends_it_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr("coach.speech.ahead.FIRST_SOUND_WAIT", 30.0)
    speech = SpeechAhead("fake", None, engine_factory=lambda name: CountingEngine(), cache=SpeechCache(tmp_path),
                         hold_after_first=True)
    speech.want([("First line.", 1.0), ("Second line.", 1.0)])
    assert speech.wait_for([("First line.", 1.0)], timeout=30)
    began = time.monotonic()
    speech.close()
    assert time.monotonic() - began < 5.0
    assert not speech._thread.is_alive()


class FailsAfterFirstEngine(CountingEngine):
    """Speaks its first text, then fails: an engine that breaks down mid-session."""

    def render(self, text: str, voice: str | None, speed: float) -> RawSpeech:
        if self.rendered:
            raise SpeechError(f"the fake engine broke down before {text!r}")
        return super().render(text, voice, speed)


def test_a_failure_after_the_plan_last_looked_reaches_a_plan_waiting_for_speech(tmp_path, monkeypatch):
    # The plan reads its clips again only when the speech's version moves: a failure that
    # did not move it left the session "preparing speech" for ever.
    from coach.live_plan import GrowingPlan
    from coach.routine import load_routine
    from coach.timeline import TimelineOptions
    from tests.test_live_plan import CHIMES, SHORT

    monkeypatch.setattr("coach.speech.ahead.FIRST_SOUND_WAIT", 30.0)
    engine = FailsAfterFirstEngine()
    speech = SpeechAhead("fake", None, engine_factory=lambda name: engine, cache=SpeechCache(tmp_path),
                         hold_after_first=True)
    try:
        plan = GrowingPlan(load_routine(SHORT), TimelineOptions(hold=6), CHIMES, speech, clock=time.monotonic)
        deadline = time.monotonic() + 30
        while speech.version == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert speech.version == 1  # the first clip, and the worker held after it
        plan.refresh(urgent=True)  # the plan has the first clip
        speech.first_sound_playing()  # the worker goes on, and the engine fails
        speech._thread.join(30)
        assert not speech._thread.is_alive()
        with pytest.raises(SpeechError, match="broke down"):
            plan.refresh(urgent=True)
    finally:
        speech.close()
