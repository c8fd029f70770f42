"""What to synthesize, and where: cache hits first, then the rest shared with a helper process.

`synthesize_all` reads what the cache holds and has the rest spoken. espeak-ng synthesizes
on one core, so for a long batch a helper process (`python -m coach.speech.helper`, with
its own espeak) takes texts from the end of the list while this process takes them from
the start, and they meet wherever the work happens to split evenly: a fixed split left
one side idle whenever the other was slowed down, by its start-up or by other programs.
The helper stores each clip in the speech cache and reports it; this process reads it
from there.

The helper only saves time. When it cannot start, fails or dies, this process speaks
what is left, and its own errors are the ones the user sees.

Messages from the helper, one JSON object per line on its stdout:
{"start": i} before text i, {"done": i} once it is in the cache, {"error": "..."}.
The helper stops before its next text once its stdin is closed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable

import numpy as np

from coach import early_helper, signals
from coach.early_helper import HELPER_COMMAND, HELPER_MIN_CHARS
from coach.errors import SpeechError
from coach.speech.cache import SpeechCache, cache_dir, cache_key
from coach.speech.clip import Clip
from coach.speech.engine import SpeechEngine, SpeechSettings
from coach.speech.registry import get_engine
from coach.speech.synthesis import synthesize_into
from coach.speech.voices import resolve_voice

log = logging.getLogger(__name__)



def synthesize(text: str, settings: SpeechSettings = SpeechSettings()) -> np.ndarray:
    """One utterance as polished float32 mono at SAMPLE_RATE (from the cache when it can)."""
    return synthesize_clips([text], settings)[text].samples


def synthesize_all(
    texts: Iterable[str],
    settings: SpeechSettings = SpeechSettings(),
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Every distinct text as polished audio (synthesize_clips without the words)."""
    return {text: clip.samples for text, clip in synthesize_clips(texts, settings, progress=progress).items()}


def synthesize_clips(
    texts: Iterable[str],
    settings: SpeechSettings = SpeechSettings(),
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Clip]:
    """Every distinct text as a polished clip with its words; cached clips are read, the rest synthesized.

    progress(done, total) counts distinct texts; cache hits are reported together first.
    """
    unique = list(dict.fromkeys(texts))
    for text in unique:
        if not isinstance(text, str) or not text.strip():
            raise SpeechError(f"cannot speak an empty text ({text!r}): give every cue some words")
    engine = get_engine(settings.engine)
    voice = resolve_voice(settings.voice, settings.engine) or engine.default_voice
    cache = SpeechCache(cache_dir())
    keys = {text: cache_key(text, voice, settings.speed, engine) for text in unique}
    clips: dict[str, Clip] = {}
    for text in unique:
        cached = cache.get(keys[text])
        if cached is not None:
            clips[text] = cached
    hits, total = len(clips), len(unique)

    def report(done_now: int) -> None:
        if progress:
            progress(hits + done_now, total)

    report(0)
    missing = [text for text in unique if text not in clips]
    if not missing or not wants_helper(missing):
        early_helper.release()  # started at the top of `coach export`, and not needed after all
    if missing:
        clips.update(synthesize_shared(missing, keys, engine, voice, settings.speed, cache, report))
    return {text: clips[text] for text in unique}


def wants_helper(texts: list[str]) -> bool:
    return bool(sys.executable) and (os.cpu_count() or 1) >= 2 and sum(map(len, texts)) >= HELPER_MIN_CHARS


def synthesize_shared(texts: list[str], keys: dict[str, str], engine: SpeechEngine, voice: str,
                      speed: float, cache: SpeechCache,
                      report: Callable[[int], None] = lambda done: None) -> dict[str, Clip]:
    """Every text as polished audio (and in the cache), with a helper process when it pays.

    report(done) counts the texts ready so far, from either process.
    """
    helper = Helper.start(texts, voice, speed, engine.name, cache) if wants_helper(texts) and cache.writable() else None
    clips: dict[str, Clip] = {}
    here: set[int] = set()

    def report_ready() -> None:  # texts done by either process
        report(len(here | helper.finished) if helper else len(here))

    def speak_here(index: int) -> None:
        text = texts[index]
        clips[text] = synthesize_into(cache, keys[text], engine, text, voice, speed)
        here.add(index)
        report_ready()

    read: set[int] = set()

    def read_from_helper() -> None:
        # What the helper has finished is read from the cache between texts spoken here,
        # not all after the last one, when nothing else is left to do alongside it.
        for index in sorted(helper.finished - here - read):
            read.add(index)
            clip = cache.get(keys[texts[index]])
            if clip is not None:
                clips[texts[index]] = clip

    # A stop signal reaches the helper from the handler itself, not after this process has
    # unwound to the `finally` below: meanwhile the helper would go on filling the cache.
    with signals.calling_on_stop(helper.stop_now) if helper else contextlib.nullcontext():
        finished = False
        try:
            mine = 0  # texts[:mine] are spoken here; the helper works down from the end
            while mine < len(texts) and (helper is None or mine < helper.claimed_from()):
                speak_here(mine)
                mine += 1
                if helper:
                    read_from_helper()
            if helper:
                helper.wait_for(range(mine, len(texts)), each=report_ready)
                report_ready()  # it may have finished before we asked
                read_from_helper()
                for index in range(mine, len(texts)):
                    if texts[index] not in clips:  # the helper failed or died before this one
                        speak_here(index)
            finished = True
        finally:
            if helper:
                helper.close(wait=not finished)
    return {text: clips[text] for text in texts}


class Helper:
    """The helper process, and what it has reported so far."""

    def __init__(self, process: subprocess.Popen, request: str, count: int) -> None:
        self.process = process
        self.finished: set[int] = set()
        self._claimed = count  # the lowest index the helper has started on
        self._ended = False
        self._request_sent = threading.Event()
        self._messages: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._talk, args=(request,), daemon=True).start()

    @classmethod
    def start(cls, texts: list[str], voice: str, speed: float, engine: str, cache: SpeechCache) -> Helper | None:
        request = json.dumps({"texts": texts, "voice": voice, "speed": speed, "engine": engine,
                              "cache": str(cache.directory)})
        process = early_helper.take()  # started before the slow imports, waiting for this request
        if process is None:
            try:
                process = early_helper.spawn_helper(HELPER_COMMAND, cache.directory)
            except OSError as err:
                log.debug("no speech helper process (%s); synthesizing in one process", err)
                return None
        return cls(process, request, len(texts))

    def _talk(self, request: str) -> None:
        # On a thread: a long request fills the pipe before the helper has started to read.
        with contextlib.suppress(OSError, ValueError):
            self.process.stdin.write(request + "\n")
            self.process.stdin.flush()
            self._request_sent.set()
        with contextlib.suppress(Exception):
            for line in self.process.stdout:
                with contextlib.suppress(ValueError):
                    self._messages.put(json.loads(line))
        self._messages.put(None)

    def _take(self, message: dict | None) -> None:
        if message is None:
            self._ended = True
        elif "start" in message:
            self._claimed = min(self._claimed, int(message["start"]))
        elif "done" in message:
            self.finished.add(int(message["done"]))
        elif "error" in message:
            # This process speaks what the helper left; a real problem shows up here too.
            log.info("speech helper stopped: %s", message["error"])

    def claimed_from(self) -> int:
        """The lowest index the helper has started on (the count when none yet); never waits."""
        with contextlib.suppress(queue.Empty):
            while not self._ended:
                self._take(self._messages.get_nowait())
        return self._claimed

    def wait_for(self, indexes: range, each: Callable[[], None] = lambda: None) -> None:
        """Wait until the helper has finished all of `indexes`, or has ended; each() after
        every message."""
        wanted = set(indexes)
        while not self._ended and not wanted <= self.finished:
            self._take(self._messages.get())
            each()

    def stop_now(self) -> None:
        """SIGTERM to the helper, from a signal handler: nothing that waits or takes a lock."""
        if self.process.returncode is None:
            with contextlib.suppress(OSError):
                os.kill(self.process.pid, signal.SIGTERM)

    def close(self, *, wait: bool) -> None:
        """Let the helper go. Normally it is asked to stop after its current text and left
        to exit on its own time (a thread collects it); on an error or Ctrl-C here it is
        stopped and waited for, so nothing of it outlives this process."""
        if not wait and self._request_sent.is_set():
            with contextlib.suppress(OSError):
                self.process.stdin.close()  # its signal to stop
            threading.Thread(target=self.process.wait, daemon=True).start()
            return
        if self.process.poll() is None:
            self.process.terminate()  # lets it remove a half-written cache file
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()
