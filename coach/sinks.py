"""Where the sound goes: a real device (simpleaudio or miniaudio), nowhere (captions), or memory (tests).

Every sink plays one buffer at a time: the live player pre-mixes overlapping sounds
(a chime ringing under speech) into one buffer, and play() stops whatever was still
sounding first, so a device without hardware mixing never needs two streams. How long
a stopped buffer may still be heard is each sink's `stop_tail` (simpleaudio: ~0.2 s).
"""

from __future__ import annotations

import collections
import ctypes
import importlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from coach.audio import SAMPLE_RATE, to_int16
from coach.errors import AudioOutputError, UsageError, one_line
from coach.lazy_modules import load_on_first_use

BACKENDS = ("simpleaudio", "miniaudio")
PROBE_SECONDS = 0.01  # a few ms of silence are enough to find a missing device
EXPORT_HINT = "Use `coach export -o session.wav` to play it elsewhere."


class Sink(Protocol):
    """One audio output. play() returns at once; a new play() replaces the buffer still sounding.

    A sink with a `lead` above 0 can be handed a sound that early: play(samples, at)
    starts it at clock time `at` (time.monotonic), placed by the device's own clock, and
    lets what was playing go on until then. play() returns the clock time its first
    sample is due, or None when the sink cannot tell (then: about now).
    """

    name: str
    volume: float
    stop_tail: float  # seconds that already-queued sound may go on after stop()
    lead: float  # how early a sound may be handed over with play(samples, at); 0: not at all

    def set_volume(self, gain: float) -> None: ...

    def play(self, samples: np.ndarray, at: float | None = None) -> float | None: ...

    def stop(self) -> None: ...

    def is_playing(self) -> bool: ...

    def wait(self) -> None: ...

    def close(self) -> None: ...


def close_quietly(sink: Sink) -> None:
    """Close `sink`; it is being let go, so a failure to close says nothing new."""
    try:
        sink.close()
    except Exception:  # noqa: BLE001 - it is gone either way
        pass


def default_backend() -> str:
    """miniaudio: one device kept open places every sound by its own clock (MiniaudioSink).

    simpleaudio opens a stream per sound, which beside busy programs took 0.1-2 s to
    start; it stays available with --audio-backend simpleaudio (it crashes after playback
    on Python 3.12+).
    """
    return "miniaudio"


def open_sink(backend: str | None = None, volume: float = 1.0) -> Sink:
    """Open an audio device and prove it plays, so a missing device is found before a session starts.

    Raises UsageError for an unknown backend name and AudioOutputError (one line, no
    ALSA noise on the terminal) when the backend is not installed or no device opens.
    """
    name = backend or default_backend()
    opener = _OPENERS.get(name)
    if opener is None:
        raise UsageError(f"unknown audio backend {name!r}: choose one of {', '.join(BACKENDS)}")
    silence_alsa_errors()
    with stderr_to_devnull():
        sink = opener(volume)
        try:
            sink.prove()
        except BaseException:
            sink.close()
            raise
    return sink


class _Volume:
    """The volume every sink applies at play time."""

    volume: float = 1.0

    def set_volume(self, gain: float) -> None:
        if not isinstance(gain, (int, float)) or not math.isfinite(gain) or gain < 0:
            raise UsageError(f"volume must be a number of 0 or more (1 = as recorded), got {gain!r}")
        self.volume = float(gain)

    def _scaled(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"a sink plays mono samples (1-D), got shape {samples.shape}")
        return samples * np.float32(self.volume) if self.volume != 1.0 else samples


class SimpleaudioSink(_Volume):
    """simpleaudio (ALSA on Linux): each play() is one play_buffer of int16 samples.

    simpleaudio cannot drop what it already handed to ALSA: after stop() the device
    still plays up to `stop_tail` seconds (its 100 ms write chunk, ALSA's 100 ms
    buffer, and the sound server's own), and a mixing device (PulseAudio, PipeWire,
    dmix) plays that tail under the next buffer.
    """

    name = "simpleaudio"
    stop_tail = 0.35
    lead = 0.0  # every play_buffer opens a stream of its own, which starts when it is open

    def __init__(self, volume: float = 1.0) -> None:
        if sys.version_info >= (3, 12):
            # It would play, then take the whole process down with a segfault.
            raise AudioOutputError("the simpleaudio backend crashes on Python 3.12 and newer; "
                                   "use --audio-backend miniaudio (pip install miniaudio)")
        self._sa = _import_backend("simpleaudio", "pip install simpleaudio (building it needs gcc and libasound2-dev)")
        self._error = self._sa._simpleaudio.SimpleaudioError
        self._current: Any = None
        self.set_volume(volume)

    def prove(self) -> None:
        """Play a few ms of silence: a missing device fails there."""
        self.play(np.zeros(int(PROBE_SECONDS * SAMPLE_RATE), dtype=np.float32))
        self.wait()

    def play(self, samples: np.ndarray, at: float | None = None) -> float | None:
        self._play(samples)
        return None

    def _play(self, samples: np.ndarray) -> None:
        pcm = to_int16(self._scaled(samples))
        previous = self._current
        self.stop()
        if len(pcm) == 0:
            return
        try:
            self._current = self._sa.play_buffer(pcm.tobytes(), 1, 2, SAMPLE_RATE)
        except self._error as err:
            if previous is None or not previous.is_playing():
                reason = _simpleaudio_reason(err)
                guess = "is the sound server running?" if "refused" in reason else "no sound card?"
                raise AudioOutputError(_no_output_message(reason, guess)) from None
            # A device that cannot mix (a bare ALSA hw device) is busy until the
            # stopped buffer has drained: late is better than silent.
            previous.wait_done()
            self._current = None
            self._play(samples)

    def stop(self) -> None:
        if self._current is not None:
            self._current.stop()
            self._current = None

    def is_playing(self) -> bool:
        return self._current is not None and self._current.is_playing()

    def wait(self) -> None:
        if self._current is not None:
            self._current.wait_done()

    def close(self) -> None:
        self.stop()


class DeviceClock:
    """Where a sound device's clock stands against this process's clock, as its requests show.

    A device asks for sound at its own rate, which is never exactly SAMPLE_RATE by the system
    clock: the test's null sink ran 430 ppm fast, a sound card's crystal is off by tens of
    ppm. Counting frames from the first request alone then drifts (half a second in 20
    minutes there), and a sound handed over ahead would land where the device has already
    been. So each steady request (time, frames handed so far) is kept: a request can come
    late (the device thread waits for the CPU) but never early, so the smallest
    `time - frames / SAMPLE_RATE` over the last WINDOW seconds follows the device's clock
    within about a millisecond. The anchor moves by how much that smallest offset has moved
    since the first window; the first requests after a start (the device filling its queue
    at once) are not paced by its clock and are left out.
    """

    WINDOW = 10.0  # seconds of requests the smallest offset is taken over
    SETTLE = 2.0  # seconds after a start before requests are paced by the device's clock

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.anchor: tuple[float, int] | None = None  # (clock time, frame) of the first request
        self._lows: collections.deque[tuple[float, float]] = collections.deque()  # (time, offset), offsets rising
        self._baseline: float | None = None  # the smallest offset of the first window

    def request(self, now: float, handed: int) -> None:
        """The device asked for frames from `handed` on, at clock time `now`."""
        if self.anchor is None:
            self.anchor = (now, handed)
            return
        began = self.anchor[0]
        if now - began < self.SETTLE:
            return
        offset = now - handed / SAMPLE_RATE
        while self._lows and self._lows[-1][1] >= offset:
            self._lows.pop()
        self._lows.append((now, offset))
        while self._lows[0][0] < now - self.WINDOW:
            self._lows.popleft()
        if self._baseline is None and now - began >= self.SETTLE + self.WINDOW:
            self._baseline = self._lows[0][1]

    def placed_anchor(self) -> tuple[float, int] | None:
        """The anchor, moved by the drift measured since the first window."""
        if self.anchor is None or self._baseline is None:
            return self.anchor
        return self.anchor[0] + (self._lows[0][1] - self._baseline), self.anchor[1]


class MiniaudioSink(_Volume):
    """miniaudio: one device opened once and kept running, fed from one buffer that play() rewrites.

    Its Linux wheels need no system package, and it does not crash on Python 3.12+.

    Placement: the device asks for PERIOD_MSEC of sound at a time, on its own thread,
    PERIODS ahead, and the sink counts the frames it has handed over. play() without `at`
    and stop() restart the device (which drops what it had queued, so a stop is heard at
    once): the first frame it then asks for is the anchor, (clock time, frame), kept in step
    with the device's own clock as it plays (DeviceClock: it drifts from ours). A sound
    handed over ahead, play(samples, at), goes in at the frame `at` is from the anchor, so
    the device's clock places it to the sample however late this process wakes up to hand
    it over (up to `lead` less the device's buffer) and however much the device's requests
    jitter. Until then, what was playing goes on.

    On Linux the ALSA backend comes first: its buffer is kept filled by the sound server's
    ALSA plugin (PulseAudio, PipeWire) on a thread of its own, so a device thread of this
    process that gets no CPU for a while (beside busy programs, 100-200 ms here) is not an
    underrun; miniaudio's own PulseAudio backend then shifted the sound by up to 0.35 s.
    """

    name = "miniaudio"
    PERIOD_MSEC = 50  # how much the device asks for at a time
    # How many it keeps queued: how long its thread may get no CPU without a gap in the
    # sound (beside busy programs on a loaded machine, up to 0.2 s was seen here).
    PERIODS = 6
    stop_tail = 0.03  # stop() drops what is queued
    lead = 0.8  # sounds handed over this early are on time: the queue, and 0.5 s of late wake-up
    ANCHOR_WAIT = 0.5  # seconds a restarted device may take to ask for its first frames
    STALL_SECONDS = 3.0  # no request from the device for this long: it is gone (a busy machine can pause it ~1 s)

    def __init__(self, volume: float = 1.0) -> None:
        _defer_urllib_request()
        ma = _import_backend("miniaudio", "pip install miniaudio")
        self.set_volume(volume)
        self._lock = threading.Lock()
        self._buffer = np.zeros(0, dtype=np.int16)
        self._buffer_frame = 0  # the device frame at which _buffer[0] plays
        self._handed = 0  # frames handed to the device since it was opened
        self._clock = DeviceClock()  # where the device's frames stand against the clock
        self._anchored = threading.Event()
        self._ends_at = 0.0  # clock time the last sound handed over ends
        self._last_request = time.monotonic()
        self._requested = threading.Event()  # set at each request of the device's
        try:
            self._device = ma.PlaybackDevice(output_format=ma.SampleFormat.SIGNED16, nchannels=1,
                                             sample_rate=SAMPLE_RATE, buffersize_msec=self.PERIOD_MSEC,
                                             callback_periods=self.PERIODS, backends=_miniaudio_backends(ma),
                                             app_name="coach")
            self._feed_generator = self._feed()
            next(self._feed_generator)
            self._device.start(self._feed_generator)
        except ma.MiniaudioError as err:
            raise AudioOutputError(_no_output_message(f"miniaudio: {err.args[0] if err.args else err}", "no sound card or sound server?")) from None
        self._error = ma.MiniaudioError

    def _feed(self) -> Iterator[bytes]:
        """The generator the device pulls from (on its own thread): the buffer, then silence."""
        frames = yield b""
        while True:
            now = self._last_request = time.monotonic()
            out = np.zeros(frames, dtype=np.int16)
            self._requested.set()
            with self._lock:
                self._clock.request(now, self._handed)
                self._anchored.set()
                position = self._handed - self._buffer_frame
                chunk = self._buffer[position: position + frames]
                self._handed += frames
            out[: len(chunk)] = chunk
            frames = yield out.tobytes()

    def prove(self) -> None:
        """The device is playing once it asks for sound (it was started on silence when
        opened): no probe to play and wait for, and no restart before the first sound."""
        if not self._anchored.wait(self.STALL_SECONDS):
            raise AudioOutputError(_no_output_message(f"the {self._device.backend} device never asked for sound"))

    def play(self, samples: np.ndarray, at: float | None = None) -> float:
        """Play now (returns the clock time it starts), or from clock time `at` on (returns when it is due)."""
        pcm = to_int16(self._scaled(samples))
        if at is None:
            return self._restart(pcm)
        if time.monotonic() - self._last_request > self.STALL_SECONDS and not self._asks_again():
            raise AudioOutputError(_no_output_message(f"the {self._device.backend} device stopped asking for sound"))
        anchor_time, anchor_frame = self._wait_for_anchor()
        with self._lock:
            # What the device has been handed is its own: a late sound starts at the next frame.
            frame = max(anchor_frame + round((at - anchor_time) * SAMPLE_RATE), self._handed)
            position = self._handed - self._buffer_frame
            carry_on = np.zeros(frame - self._handed, dtype=np.int16)
            rest = self._buffer[position: position + len(carry_on)]
            carry_on[: len(rest)] = rest
            self._buffer = np.concatenate((carry_on, pcm))
            self._buffer_frame = self._handed
            due = anchor_time + (frame - anchor_frame) / SAMPLE_RATE
            self._ends_at = due + len(pcm) / SAMPLE_RATE
        return due

    def _asks_again(self) -> bool:
        """Whether a device that has not asked for a while asks within STALL_SECONDS from now.
        A process stopped (Ctrl-Z, a suspended laptop) stops the device's thread too: it asks
        again as soon as the process goes on, and is not gone."""
        self._requested.clear()
        return self._requested.wait(self.STALL_SECONDS)

    def stop(self) -> None:
        self._restart(np.zeros(0, dtype=np.int16))

    def _restart(self, pcm: np.ndarray) -> float:
        """Drop what the device has queued and start it again on `pcm`; returns when `pcm` starts."""
        try:
            self._device.stop()  # not under the lock: it waits for the device thread, which takes it
            with self._lock:
                self._buffer = pcm
                self._buffer_frame = self._handed
                self._clock.restart()
                self._anchored.clear()
            self._device.start(self._feed_generator)
        except self._error as err:
            raise AudioOutputError(_no_output_message(f"the {self._device.backend} device failed: {err}")) from None
        anchor_time, anchor_frame = self._wait_for_anchor()
        due = anchor_time + (self._buffer_frame - anchor_frame) / SAMPLE_RATE
        self._ends_at = due + len(pcm) / SAMPLE_RATE
        return due

    def _wait_for_anchor(self) -> tuple[float, int]:
        if not self._anchored.wait(self.ANCHOR_WAIT):
            with self._lock:  # not asked yet: a guess, as if it had asked now
                if self._clock.anchor is None:
                    self._clock.request(time.monotonic(), self._handed)
        with self._lock:
            return self._clock.placed_anchor()

    def is_playing(self) -> bool:
        return time.monotonic() < self._ends_at

    def wait(self) -> None:
        time.sleep(max(0.0, self._ends_at - time.monotonic()))  # until the end of what was handed over is due

    def close(self) -> None:
        self._device.close()


def _miniaudio_backends(ma: Any) -> list:
    """The backends miniaudio may try, ALSA first on Linux (see MiniaudioSink). The NULL
    backend "plays" into nothing: a missing device must be an error instead."""
    enabled = ma.get_enabled_backends()
    usable = [b for b in ma.Backend if b in enabled and b not in (ma.Backend.NULL, ma.Backend.CUSTOM)]
    return sorted(usable, key=lambda b: b != ma.Backend.ALSA)


class CaptionSink(_Volume):
    """Plays nothing: used when there is no device, while the player prints each cue as a caption."""

    name = "captions"
    stop_tail = 0.0
    lead = 0.0

    def __init__(self, volume: float = 1.0) -> None:
        self.set_volume(volume)

    def play(self, samples: np.ndarray, at: float | None = None) -> None:
        self._scaled(samples)  # the same argument checks as a real device

    def stop(self) -> None:
        pass

    def is_playing(self) -> bool:
        return False

    def wait(self) -> None:
        pass

    def close(self) -> None:
        pass


class MemorySink(_Volume):
    """Records what would be played and when, for tests of the player in simulated time.

    `plays` holds (time it starts, samples after volume) per play(): clock() then, or `at`
    for a sound handed over ahead (with `lead` above 0); a stop() or a play() before such
    a sound starts takes it back out. `stops` holds clock() per explicit stop(). With
    `sleep`, wait() sleeps until the buffer would end. With `fails_from`, play() raises
    AudioOutputError from that time on, like a device unplugged.
    """

    name = "memory"
    stop_tail = 0.0

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None] | None = None,
                 volume: float = 1.0, fails_from: float | None = None, lead: float = 0.0) -> None:
        self.clock = clock
        self.sleep = sleep
        self.fails_from = fails_from
        self.lead = lead
        self.plays: list[tuple[float, np.ndarray]] = []
        self.handed: list[float] = []  # clock() at each play()
        self.stops: list[float] = []
        self._ends_at = float("-inf")
        self.set_volume(volume)

    def play(self, samples: np.ndarray, at: float | None = None) -> float:
        now = self.clock()
        if self.fails_from is not None and now >= self.fails_from:
            raise AudioOutputError(_no_output_message("the device was removed (simulated)"))
        scaled = self._scaled(samples).copy()
        starts = now if at is None or self.lead <= 0 else max(at, now)
        self._take_back(starts, inclusive=True)
        self.plays.append((starts, scaled))
        self.handed.append(now)
        self._ends_at = starts + len(scaled) / SAMPLE_RATE
        return starts

    def stop(self) -> None:
        now = self.clock()
        self.stops.append(now)
        self._take_back(now, inclusive=False)
        self._ends_at = min(self._ends_at, now)

    def _take_back(self, after: float, inclusive: bool) -> None:
        """A sound handed over ahead to start after `after` (or at it) never plays."""
        kept = [i for i, (starts, _) in enumerate(self.plays)
                if starts <= self.handed[i] or starts < after or (starts == after and not inclusive)]
        self.plays = [self.plays[i] for i in kept]
        self.handed = [self.handed[i] for i in kept]

    def is_playing(self) -> bool:
        return self.clock() < self._ends_at

    def wait(self) -> None:
        left = self._ends_at - self.clock()
        if self.sleep is not None and left > 0:
            self.sleep(left)

    def close(self) -> None:
        self.stop()


_OPENERS: dict[str, Callable[[float], SimpleaudioSink | MiniaudioSink]] = {
    "simpleaudio": SimpleaudioSink,
    "miniaudio": MiniaudioSink,
}


def _defer_urllib_request() -> None:
    """miniaudio imports urllib.request at its top, for its internet-radio client, which coach
    never uses; loading it (http.client, email, ssl) took 20 ms of a live session's way to
    its first sound. It loads on first use instead."""
    load_on_first_use("urllib.request")


def _import_backend(module: str, how_to_install: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        others = ", ".join(name for name in BACKENDS if name != module)
        raise AudioOutputError(f"the {module} audio backend is not installed: {how_to_install}, "
                               f"or choose another with --audio-backend ({others})") from None


def _simpleaudio_reason(err: Exception) -> str:
    # "Error opening PCM device. -- CODE: -2 -- MSG: No such file or directory"
    what, _, rest = str(err).partition(" -- CODE")
    detail = rest.partition("MSG: ")[2].strip()
    return what.rstrip(". ") + (f": {detail}" if detail else "")


def _no_output_message(reason: str, guess: str = "") -> str:
    return one_line(f"no audio output: {reason}{f' ({guess})' if guess else ''}. {EXPORT_HINT}")


_alsa_handler: Any = None


def silence_alsa_errors() -> None:
    """Stop libasound from printing `ALSA lib ...` lines to stderr, for this whole process.

    The same library instance serves simpleaudio and miniaudio, so one no-op handler
    covers them. Nothing to do where there is no ALSA (macOS, Windows).
    """
    global _alsa_handler
    if _alsa_handler is not None:
        return
    try:
        alsa = ctypes.CDLL("libasound.so.2")
    except OSError:
        _alsa_handler = False
        return
    # The real signature ends in a printf-style `...`; a handler that ignores its
    # arguments may safely be declared with the fixed ones only.
    handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                    ctypes.c_int, ctypes.c_char_p)
    _alsa_handler = handler_type(lambda *_: None)  # kept referenced: ALSA calls it later
    alsa.snd_lib_error_set_handler(_alsa_handler)


@contextmanager
def stderr_to_devnull() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null meanwhile: native libraries (JACK, PulseAudio) print there."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield  # no usable stderr: nothing to hide
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
