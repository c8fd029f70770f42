"""Speech ahead of the playhead: texts synthesized in the order a live session needs them.

`SpeechAhead` keeps a list of (text, speed) in playback order and a worker thread that
takes the first one not ready yet: from the cache when it is there, else from the engine
(and then into the cache, as for a whole batch). A live session asks for the order once
at its start, and again when the listener jumps or changes the voice speed; clips made
at another speed stay, so changing back costs nothing.

espeak's render sends this whole process's stdout and stderr to /dev/null for the few
milliseconds it takes (pyttsx3 and libespeak-ng print there). `output_lock` is held
meanwhile: whoever writes to the terminal (the live display) takes it too, so no line
is lost to that redirection.

Once the first clip is ready, the worker and the threads its engine started (espeak's
synthesis thread, onnxruntime's pool) drop to a lower CPU priority: the sound device's
threads in this process (miniaudio's, ALSA's PulseAudio plugin) then come first
whenever both want a core. Measured beside two busy loops, a re-synthesis at full
priority after a speed key made a play() take up to 2 s and hold-start chimes 0.1-0.3 s
late. Only on Linux, where a thread has its own nice value.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from coach.errors import SpeechError
from coach.speech.cache import SpeechCache, cache_dir, cache_key, key_for
from coach.speech.clip import Clip
from coach.speech.engine import SpeechEngine
from coach.speech.registry import cache_identity, get_engine
from coach.speech.synthesis import synthesize_into
from coach.speech.voices import resolve_voice

log = logging.getLogger(__name__)

Want = tuple[str, float]  # (text, speed)
_UNKNOWN = object()

# The nice value of the synthesis threads after the first clip (0 is normal, 19 the lowest).
# With autogroup scheduling it only orders this process's own threads; without it, the
# worker still gets about a quarter of a core against each busy program, ahead of playback
# for espeak (tens of times faster than real time).
WORKER_NICE = 5
# With hold_after_first, how long the worker waits after the first clip for the session to
# say its first sound is playing: a bound, so that a session that never says so still gets
# its speech.
FIRST_SOUND_WAIT = 0.5


# Workers that close() stopped waiting for, still in the middle of a clip.
_left_running: list[threading.Thread] = []


def engine_still_running() -> bool:
    """Whether a closed SpeechAhead's engine is still making a clip on its thread: then the
    process must end without Python's shutdown, which onnxruntime does not survive (it
    aborts: "terminate called without an active exception")."""
    return any(thread.is_alive() for thread in _left_running)


class SpeechAhead:
    """Clips for (text, speed), synthesized on a worker thread in the order last asked for.

    get() never waits; version moves with every clip made ready (and with a failure), so a
    reader can tell whether anything is new. A SpeechError on the worker is kept and raised by get() and
    wait_for(), in the thread that asks.

    hold_after_first: after the first clip the worker waits (FIRST_SOUND_WAIT at most) until
    first_sound_playing() is called. Until then the session's one thread that matters opens
    the sound device and starts the first sound; reading the next clips from the cache
    (file reads, numpy, Python objects: the GIL) beside it made a warm start slower
    (first sound 268 -> 229 ms, medians of 7 alternating runs, when this was added).
    """

    def __init__(self, engine: str, voice: str | None, *, output_lock: threading.Lock | None = None,
                 engine_factory: Callable[[str], SpeechEngine] = get_engine,
                 cache: SpeechCache | None = None, hold_after_first: bool = False) -> None:
        # The engine starts on the worker thread (espeak: ~50 ms, Piper's model: longer), while
        # this one opens the sound device: both are needed before the first sound.
        self._engine_name, self._voice_name, self._engine_factory = engine, voice, engine_factory
        self.engine: SpeechEngine | None = None
        self.voice: str | None = None
        self._engine_lock = threading.Lock()
        self.cache = cache if cache is not None else SpeechCache(cache_dir())
        self.output_lock = output_lock if output_lock is not None else threading.Lock()
        # Called once the output is back after a render: the display writes what waited for it.
        self.output_free: Callable[[], None] = lambda: None
        self.version = 0
        self.synthesized = 0  # clips the engine made here (not read from the cache)
        self.busy_seconds = 0.0  # time the worker spent making them
        self._clips: dict[Want, Clip] = {}
        self._order: list[Want] = []
        self._error: SpeechError | None = None
        self._closed = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._engine_threads: set[int] = set()  # thread ids the engine started
        self._lowered = False
        self._identity: tuple[str, str] | None | object = _UNKNOWN  # see _unstarted_key
        self._first_sound = threading.Event()
        if not hold_after_first:
            self._first_sound.set()

    # --- asking --------------------------------------------------------------------------

    def want(self, order: Sequence[Want]) -> None:
        """Synthesize these next, in this order (replacing the order asked for before)."""
        with self._changed:
            self._order = [item for item in dict.fromkeys(order) if item not in self._clips]
            self._changed.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="speech-ahead", daemon=True)
            self._thread.start()

    def get(self, text: str, speed: float) -> Clip | None:
        """The clip, or None while it is not ready."""
        if self._error is not None:
            raise self._error
        return self._clips.get((text, speed))

    def length(self, text: str, speed: float) -> int | None:
        clip = self.get(text, speed)
        return None if clip is None else len(clip)

    def pending(self) -> int:
        with self._changed:
            return len(self._order)

    def wait_for(self, items: Sequence[Want], timeout: float | None = None) -> bool:
        """Wait until every item is ready (True) or `timeout` seconds pass (False)."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: self._error is not None or all(item in self._clips for item in items), timeout)
        if self._error is not None:
            raise self._error
        return done

    def synthesize_now(self, text: str, speed: float) -> np.ndarray:
        """One clip right away on this thread (the spoken key list): cached like the rest."""
        clip = self.get(text, speed)
        if clip is None:
            clip = self._make((text, speed))
            self._store((text, speed), clip)
        return clip.samples

    def first_sound_playing(self) -> None:
        """The session's first sound has started: the worker goes on (see hold_after_first)."""
        self._first_sound.set()

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the clip being made, and wait for that: an engine still running on a
        thread while Python shuts down can crash the process (onnxruntime does)."""
        with self._changed:
            self._closed = True
            self._order = []
            self._changed.notify_all()
        self._first_sound.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():  # a long Piper clip on a loaded machine
                _left_running.append(self._thread)

    # --- the worker ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._closed or self._order)
                if self._closed:
                    return
                item = self._order.pop(0)
            try:
                clip = self._make(item)
            except SpeechError as err:
                self._fail(err)
                return
            except Exception as err:  # noqa: BLE001 - the session must hear of it, not hang
                self._fail(SpeechError(f"speech synthesis failed: {err}"))
                return
            self._store(item, clip)
            if not self._lowered:
                self._lowered = True
                self._lower_priority()
                self._first_sound.wait(FIRST_SOUND_WAIT)

    def _lower_priority(self) -> None:
        """The worker and its engine's threads below playback from now on (see the module docstring)."""
        if not sys.platform.startswith("linux"):
            return
        for thread_id in {threading.get_native_id(), *self._engine_threads}:
            with contextlib.suppress(OSError):  # a thread that has ended, or a sandbox that forbids it
                os.setpriority(os.PRIO_PROCESS, thread_id, max(WORKER_NICE, os.getpriority(os.PRIO_PROCESS, thread_id)))

    def _start_engine(self) -> None:
        with self._engine_lock:
            if self.engine is None:
                with self._quiet_lock():  # espeak's start-up redirects the output too
                    # (and then no sound device opens meanwhile, whose threads would count too)
                    before = _thread_ids()
                    engine = self._engine_factory(self._engine_name)
                    self._engine_threads = _thread_ids() - before
                    voice = resolve_voice(self._voice_name, self._engine_name) if self._voice_name else None
                self.output_free()
                self.voice = voice or engine.default_voice
                self.engine = engine
                if self._lowered:  # started on a miss after cached clips: its threads go low too
                    self._lower_priority()

    def _make(self, item: Want) -> Clip:
        text, speed = item
        if self.engine is None:  # a cached clip may need no engine at all
            key = self._unstarted_key(text, speed)
            clip = self.cache.get(key) if key is not None else None
            if clip is not None:
                return clip
        self._start_engine()
        key = cache_key(text, self.voice, speed, self.engine)
        clip = self.cache.get(key)
        if clip is not None:
            return clip
        began = time.monotonic()
        with self._quiet_lock():
            clip = synthesize_into(self.cache, key, self.engine, text, self.voice, speed)
        self.output_free()
        self.busy_seconds += time.monotonic() - began
        self.synthesized += 1
        return clip

    def _unstarted_key(self, text: str, speed: float) -> str | None:
        """The clip's cache key before the engine has started, where the engine can tell its
        identity unstarted (registry.cache_identity); the same key the started engine gives."""
        if self._engine_factory is not get_engine:
            return None  # an engine of the caller's own (tests): only it knows its version
        if self._identity is _UNKNOWN:
            try:
                self._identity = cache_identity(self._engine_name, self._voice_name)
            except SpeechError:
                self._identity = None  # a bad voice: the engine's start says so
        if self._identity is None:
            return None
        version, voice = self._identity
        return key_for(text, voice, speed, self._engine_name, version)

    def _quiet_lock(self):
        # Only espeak's render redirects the output (Piper's does not, and holds it for up
        # to a second, which would hold up the display as long).
        if self.output_lock is None or self._engine_name != "espeak":
            return nullcontext()
        return self.output_lock

    def _fail(self, err: SpeechError) -> None:
        # A new version too: a plan that waits for speech reads its clips again only when the
        # version moves, and so meets the error (get() raises it) instead of waiting for ever.
        with self._changed:
            self._error = err
            self.version += 1
            self._changed.notify_all()

    def _store(self, item: Want, clip: Clip) -> None:
        with self._changed:
            self._clips[item] = clip
            if item in self._order:
                self._order.remove(item)
            self.version += 1
            self._changed.notify_all()


def _thread_ids() -> set[int]:
    """The ids of this process's threads (Linux), or none where they cannot be listed; not
    libpulse's own ("threaded-ml": the sound device's, when one opens at the same time)."""
    try:
        names = os.listdir("/proc/self/task")
    except OSError:
        return set()
    found = set()
    for name in names:
        with contextlib.suppress(OSError):
            if Path(f"/proc/self/task/{name}/comm").read_text().strip() != "threaded-ml":
                found.add(int(name))
    return found
