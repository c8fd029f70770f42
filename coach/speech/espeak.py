"""espeak-ng through pyttsx3: the default speech engine, and its traps."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import wave
import weakref
from collections.abc import Iterator
from importlib import metadata

import numpy as np

from coach.audio import SAMPLE_RATE
from coach.errors import SpeechError
from coach.speech.engine import ESPEAK_NORMAL_WPM, Voice
from coach.speech.engine import quote_text as _quote

NO_ESPEAK = "no text-to-speech engine: espeak-ng is not installed (sudo apt-get install espeak-ng)"


class _EngineTimeout(Exception):
    """Raised inside pyttsx3's driver loop to break out of it when an utterance never finishes."""


class _DriverClock:
    """Stands in for the `time` module inside pyttsx3's espeak driver.

    The driver polls every 10 ms for espeak's own thread to finish an utterance, which
    takes about 3 ms: measured, 40 utterances took 0.5 s, almost all of it waiting, and
    0.19 s with 0.2 ms polls. The deadline also turns a driver loop that would never end
    (espeak never reporting the end of an utterance) into an error instead of a hang.
    """

    def __init__(self) -> None:
        self.deadline = math.inf

    def sleep(self, _seconds: float) -> None:
        if time.monotonic() > self.deadline:
            raise _EngineTimeout
        time.sleep(0.0005)  # poll often, but leave the CPU to espeak's thread

    def __getattr__(self, name: str):
        return getattr(time, name)


def _load_pyttsx3():
    """(pyttsx3 engine, its ctypes binding of libespeak-ng), or SpeechError saying what to install."""
    try:
        import pyttsx3
    except ImportError as err:
        raise SpeechError("no text-to-speech engine: the pyttsx3 package is missing (reinstall coach)") from err
    try:
        engine = pyttsx3.init("espeak")
        from pyttsx3.drivers import _espeak
    except Exception as err:  # the driver raises RuntimeError, OSError, ... when libespeak-ng.so.1 cannot load
        raise SpeechError(NO_ESPEAK) from err
    return engine, _espeak


class EspeakEngine:
    """espeak-ng through pyttsx3, minding pyttsx3 2.99's traps.

    One utterance per runAndWait (only the last queued save_to_file would be written);
    voice and rate set explicitly before each one; the `error` event (how a bad voice
    shows up) becomes a SpeechError; the WAV is read only after `finished-utterance`
    and once it is complete. espeak keeps global state, so one lock serialises calls.
    """

    name = "espeak"
    timeout = 10.0  # seconds per utterance, plus a little per character; espeak needs a few ms

    def __init__(self) -> None:
        with quiet_output():
            self._tts, self._espeak = _load_pyttsx3()
        espeak_version = self._espeak.Info(None).decode("ascii", "replace")
        self.version = f"espeak-ng {espeak_version}; pyttsx3 {_package_version('pyttsx3')}"
        self.default_voice = self._tts.getProperty("voice") or "gmw/en"
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._finished = threading.Event()
        self._cancelled = threading.Event()
        self._tts.connect("error", self._on_error)
        self._tts.connect("finished-utterance", self._on_finished)
        self._clock = _install_driver_clock()
        # pyttsx3 queues commands until its first runAndWait and runs them at once after
        # that; one empty run now means voice, rate and file are always set right away.
        with quiet_output():
            self._tts.runAndWait()
        self._workdir = tempfile.mkdtemp(prefix="coach-speech-")
        weakref.finalize(self, shutil.rmtree, self._workdir, True)
        self._voices: list[Voice] | None = None
        # (voice, rate) espeak was last set to: setting the voice again reloads its data,
        # about a quarter of a millisecond per utterance for nothing when it is the same.
        self._applied: tuple[str, int] | None = None

    def voices(self) -> list[Voice]:
        if self._voices is None:
            with self._lock, quiet_output():
                found = self._tts.getProperty("voices")
            self._voices = [Voice(v.id, v.name, tuple(v.languages or ()), self.name) for v in found]
        return list(self._voices)

    def render(self, text: str, voice: str | None, speed: float) -> np.ndarray:
        with self._lock, quiet_output():
            return self._render(text, voice or self.default_voice, round(ESPEAK_NORMAL_WPM * speed))

    def _render(self, text: str, voice: str, rate: int) -> np.ndarray:
        path = os.path.join(self._workdir, "utterance.wav")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._errors.clear()
        self._finished.clear()
        self._cancelled.clear()
        deadline = time.monotonic() + self.timeout + len(text) / 50.0
        if self._applied != (voice, rate):
            self._applied = None  # unknown until both are set and the utterance went well
            self._tts.setProperty("voice", voice)
            self._tts.setProperty("rate", rate)
        self._tts.save_to_file(text, path)
        self._wait_until_idle(text, deadline)
        self._clock.deadline = deadline
        try:
            self._tts.runAndWait()
        except BaseException as err:  # also Ctrl-C: stop espeak, and leave pyttsx3 able to run again
            with contextlib.suppress(Exception):
                self._tts.endLoop()
            if not isinstance(err, Exception):
                # espeak's own thread may still finish this utterance, and pyttsx3 then prints
                # "Audio saved to ..."; let that happen while our output is still silenced.
                self._settle(time.monotonic() + 0.3)
                raise
            reason = "it did not finish in time" if isinstance(err, _EngineTimeout) else str(err)
            raise SpeechError(f"espeak-ng failed to speak {_quote(text)}: {reason}; try again, or reinstall espeak-ng") from err
        finally:
            self._clock.deadline = math.inf
        if self._errors:
            raise SpeechError(
                f"espeak-ng failed to speak {_quote(text)} with voice {voice!r}: {self._errors[0]} "
                "(`coach voices` lists the voices)"
            )
        pcm = self._wait_for_wav(path, text, deadline)
        self._applied = (voice, rate)
        return pcm

    def _settle(self, deadline: float) -> None:
        with contextlib.suppress(Exception):
            while self._espeak.IsPlaying() and time.monotonic() < deadline:
                time.sleep(0.002)
        time.sleep(0.02)

    def _wait_until_idle(self, text: str, deadline: float) -> None:
        # espeak-ng works through a queue on its own thread: rate changes go through it, and
        # it is still returning from the last utterance when runAndWait returns. If it is
        # busy when runAndWait starts, pyttsx3 cancels what it is doing: the new utterance
        # (measured: 1 in 60 came out empty) or the rate change.
        while self._espeak.IsPlaying():
            if time.monotonic() > deadline:
                raise SpeechError(f"espeak-ng is still busy before {_quote(text)}; try again, or reinstall espeak-ng")
            time.sleep(0.0005)

    def _wait_for_wav(self, path: str, text: str, deadline: float) -> np.ndarray:
        # runAndWait may return before the file is whole: wait for `finished-utterance`,
        # then for a WAV whose data is as long as its header says.
        while True:
            if self._finished.is_set():
                pcm = _read_complete_wav(path)
                if pcm is not None:
                    return pcm
            elif self._cancelled.is_set():
                raise SpeechError(f"espeak-ng stopped before finishing {_quote(text)}; try again")
            if time.monotonic() > deadline:
                raise SpeechError(f"espeak-ng wrote no complete audio for {_quote(text)}; try again, or reinstall espeak-ng")
            time.sleep(0.002)

    def _on_error(self, name=None, exception=None, **_ignored) -> None:
        self._errors.append(exception if exception is not None else RuntimeError("unknown engine error"))

    def _on_finished(self, name=None, completed=True, **_ignored) -> None:
        (self._finished if completed else self._cancelled).set()


def _install_driver_clock() -> _DriverClock:
    driver = sys.modules.get("pyttsx3.drivers.espeak")
    current = getattr(driver, "time", None)
    if isinstance(current, _DriverClock):
        return current
    clock = _DriverClock()
    if current is time:  # only replace what we know: a different pyttsx3 keeps its own loop
        driver.time = clock
    return clock


def _read_complete_wav(path: str) -> np.ndarray | None:
    """The WAV's samples, or None while it is missing or shorter than its header says."""
    try:
        with wave.open(path, "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2 or wav.getframerate() != SAMPLE_RATE:
                raise SpeechError(
                    f"espeak-ng wrote {wav.getnchannels()} channel(s), {8 * wav.getsampwidth()}-bit, "
                    f"{wav.getframerate()} Hz audio; coach expects mono 16-bit {SAMPLE_RATE} Hz (check the pyttsx3 version)"
                )
            expected = wav.getnframes()
            frames = wav.readframes(expected)
    except (FileNotFoundError, EOFError, wave.Error):
        return None
    if len(frames) != 2 * expected:
        return None
    return np.frombuffer(frames, "<i2").astype(np.float32) / np.float32(32768.0)


# --- keeping the engine quiet ----------------------------------------------------


@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """Send everything written to stdout and stderr, by Python or by C code, to /dev/null.

    pyttsx3 prints `Audio saved to ...` for every file and libespeak-ng may complain on
    stderr; none of that is for the user. Both the Python streams and file descriptors
    1 and 2 are redirected, and restored afterwards even on error.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved: list[tuple[int, int]] = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
            except OSError:  # that descriptor is closed: nothing to protect
                continue
            os.dup2(devnull, fd)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"
