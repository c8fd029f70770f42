"""espeak-ng through pyttsx3: the default speech engine, and its traps."""

from __future__ import annotations

import contextlib
import ctypes
import inspect
import json
import os
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np

from coach.early_helper import cache_dir
from coach.errors import CoachError, SpeechError
from coach.files import atomic_write_bytes, read_if_regular
from coach.speech.clip import RawSpeech
from coach.speech.engine import ESPEAK_NORMAL_WPM, Voice
from coach.speech.engine import quote_text as _quote
from coach.speech.packages import package_version

NO_ESPEAK = "no text-to-speech engine: espeak-ng is not installed (sudo apt-get install espeak-ng)"


# The pyttsx3 releases whose espeak driver coach's subclass was tested with (pyproject pins them).
TESTED_PYTTSX3 = ("2.99",)


class _EngineTimeout(Exception):
    """Raised inside pyttsx3's driver loop to break out of it when an utterance never finishes."""


class _Utterance:
    """What espeak's synth callback collected for one utterance, on espeak's own thread."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.chunks: list[bytes] = []
        self.marks: list[tuple[int, int]] = []  # (character offset, sample) of each word event
        self.done = threading.Event()


def _load_pyttsx3():
    """(pyttsx3 engine, its ctypes binding of libespeak-ng), or SpeechError saying what to install.

    The engine's driver is coach's subclass (`_memory_driver_type`), installed in pyttsx3's
    espeak driver module before `pyttsx3.init` builds it.
    """
    try:
        import pyttsx3
    except ImportError as err:
        raise SpeechError("no text-to-speech engine: the pyttsx3 package is missing (reinstall coach)") from err
    try:
        from pyttsx3.drivers import _espeak
        from pyttsx3.drivers import espeak as driver_module
    except Exception as err:  # the binding raises RuntimeError, OSError, ... when libespeak-ng.so.1 cannot load
        raise SpeechError(NO_ESPEAK) from err
    if not isinstance(getattr(driver_module, "buildDriver", None), _BuildMemoryDriver):
        driver_module.buildDriver = _BuildMemoryDriver(_memory_driver_type(driver_module, _espeak))
    try:
        engine = pyttsx3.init("espeak")
    except Exception as err:
        raise SpeechError(NO_ESPEAK) from err
    if not isinstance(engine.proxy._driver, driver_module.buildDriver.driver_type):
        raise SpeechError(_unknown_pyttsx3("its espeak driver was built before coach could replace it"))
    return engine, _espeak


class _BuildMemoryDriver:
    """pyttsx3's `buildDriver(proxy)` for the espeak driver, building coach's subclass."""

    def __init__(self, driver_type: type) -> None:
        self.driver_type = driver_type

    def __call__(self, proxy):
        return self.driver_type(proxy)


def _unknown_pyttsx3(why: str) -> str:
    return (f"pyttsx3 {package_version('pyttsx3')} is not a version coach can drive ({why}); "
            f"install a tested one: pip install 'pyttsx3=={TESTED_PYTTSX3[-1]}'")


def _version(espeak) -> str:
    """What a cache key records of the engine: libespeak-ng's version and pyttsx3's.
    `espeak`: pyttsx3's binding, or the library itself (_libespeak)."""
    return f"espeak-ng {espeak.Info(None).decode('ascii', 'replace')}; pyttsx3 {package_version('pyttsx3')}"


# The names pyttsx3's binding loads libespeak-ng by on Linux, in its order.
LIBESPEAK_NAMES = ("libespeak-ng.so.1", "/usr/local/lib/libespeak-ng.so.1", "libespeak.so.1")


class _Library:
    """libespeak-ng loaded by ctypes alone, for its version: pyttsx3 and its binding take
    about 9 ms to import, and espeak_Info needs no espeak_Initialize."""

    def __init__(self, dll) -> None:
        self._info = dll.espeak_Info
        self._info.restype = ctypes.c_char_p
        self._info.argtypes = [ctypes.c_void_p]

    def Info(self, _path) -> bytes:  # noqa: N802 - the binding's name, so _version takes either
        return self._info(None) or b"unknown"


def _libespeak() -> _Library | None:
    for name in LIBESPEAK_NAMES:
        try:
            return _Library(ctypes.CDLL(name))
        except (OSError, AttributeError):
            continue
    return None


# espeak's default voice, by engine version, as started engines found it: in the speech cache
# folder, since it is there to find clips in that cache.
DEFAULT_VOICE_MEMO = "espeak-default-voice.json"


def _remembered_default_voices() -> dict:
    with contextlib.suppress(OSError, ValueError):
        # Not read_text(): a named pipe in its place would hang every export.
        found = json.loads(read_if_regular(cache_dir() / DEFAULT_VOICE_MEMO) or b"{}")
        if isinstance(found, dict):
            return found
    return {}


def _remember_default_voice(version: str, voice: str) -> None:
    """Note the default voice for identity(); only a head start, so a failure is ignored."""
    known = _remembered_default_voices()
    if known.get(version) == voice:
        return
    known[version] = voice
    folder = cache_dir()
    with contextlib.suppress(OSError, CoachError):  # CoachError: atomic_write_bytes's ExportError
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / DEFAULT_VOICE_MEMO, json.dumps(known).encode("utf-8"), force=True)


def _memory_driver_type(driver_module, espeak) -> type:
    """A subclass of pyttsx3's espeak driver that keeps each utterance's samples and word
    events in memory instead of writing a WAV file.

    pyttsx3 hands espeak-ng's samples and events to `EspeakDriver._onSynth` on espeak's
    thread; the subclass takes them there. Its `startLoop` waits for the end of the
    utterance instead of polling every 10 ms (an utterance takes a few ms), and turns an
    utterance that never ends into an error instead of a hang. Both are private API, so
    the driver's shape is checked first: a different one is one SpeechError line.
    """
    base = getattr(driver_module, "EspeakDriver", None)
    fields = {name for name, *_ in getattr(getattr(espeak, "EVENT", None), "_fields_", ())}
    needed = ("_onSynth", "_start_synthesis", "startLoop", "endLoop", "iterate", "say")
    try:
        parameters = list(inspect.signature(base._onSynth).parameters)
    except (AttributeError, TypeError, ValueError):
        parameters = []
    if (base is None or not all(callable(getattr(base, name, None)) for name in needed)
            or parameters != ["self", "wav", "numsamples", "events"]
            or not {"type", "text_position", "length", "sample"} <= fields
            or not all(hasattr(espeak, name) for name in ("EVENT_WORD", "EVENT_MSG_TERMINATED", "EVENT_LIST_TERMINATED"))):
        raise SpeechError(_unknown_pyttsx3("its espeak driver is not shaped as coach expects"))
    word, terminated, end_of_list = espeak.EVENT_WORD, espeak.EVENT_MSG_TERMINATED, espeak.EVENT_LIST_TERMINATED

    class MemoryDriver(base):
        utterance: _Utterance | None = None

        def _onSynth(self, wav, numsamples, events):
            utterance = self.utterance
            if utterance is None or not self._speaking:
                return 0
            if numsamples > 0:
                utterance.chunks.append(ctypes.string_at(wav, 2 * numsamples))
            i = 0
            while (event := events[i]).type != end_of_list:
                if event.type == word:
                    utterance.marks.append((event.text_position - 1, event.sample))  # 1-based offset
                elif event.type == terminated:
                    self._speaking = False
                    self._proxy.notify("finished-utterance", completed=True)
                    self._proxy.setBusy(False)
                    utterance.done.set()
                    self.endLoop()
                    break
                i += 1
            return 0

        def startLoop(self):
            utterance = self.utterance
            self._looping = True
            self._proxy.setBusy(False)
            if self._text_to_say and utterance is not None:
                self._start_synthesis(self._text_to_say)
            # Waits for the utterance itself, not for _looping: a command pyttsx3 queued while
            # busy (after an utterance that failed) may end the loop as it starts.
            while utterance is not None and not utterance.done.wait(0.005):
                if self._stopping:  # pyttsx3 cancels an utterance espeak was busy with at the start
                    self.iterate()
                    break
                if time.monotonic() > utterance.deadline:
                    raise _EngineTimeout
            self._looping = False

    return MemoryDriver


class EspeakEngine:
    """espeak-ng through pyttsx3, minding pyttsx3 2.99's traps.

    One utterance per runAndWait; voice and rate set explicitly before each one; the
    `error` event (how a bad voice shows up) becomes a SpeechError. The samples and word
    events come straight from espeak's synth callback (no file). espeak keeps global
    state, so one lock serialises calls.
    """

    name = "espeak"
    timeout = 10.0  # seconds per utterance, plus a little per character; espeak needs a few ms

    def __init__(self) -> None:
        with quiet_output():
            self._tts, self._espeak = _load_pyttsx3()
        self.version = _version(self._espeak)
        self.default_voice = self._tts.getProperty("voice") or "gmw/en"
        _remember_default_voice(self.version, self.default_voice)
        self._driver = self._tts.proxy._driver
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._tts.connect("error", self._on_error)
        # pyttsx3 queues commands until its first runAndWait and runs them at once after
        # that; one empty run now means voice, rate and text are always set right away.
        with quiet_output():
            self._tts.runAndWait()
        self._voices: list[Voice] | None = None
        # (voice, rate) espeak was last set to: setting the voice again reloads its data,
        # about a quarter of a millisecond per utterance for nothing when it is the same.
        self._applied: tuple[str, int] | None = None

    @classmethod
    def identity(cls) -> tuple[str, str, None] | None:
        """(version, default voice, None) for a cache key, without starting espeak: the
        version from libespeak-ng (loaded, not initialised), the default voice as the last
        start with this version found it (DEFAULT_VOICE_MEMO). None when either is unknown;
        the voices (for a voice asked for by name) only a started engine can list.

        Starting espeak takes about 12 ms and points the output at /dev/null meanwhile, so
        the sound device cannot open while it runs: a session whose first clip is cached
        opens the device at once instead, and starts espeak only for a clip not cached."""
        library = _libespeak()
        if library is None:
            return None
        version = _version(library)
        voice = _remembered_default_voices().get(version)
        return (version, voice, None) if isinstance(voice, str) and voice else None

    def voices(self) -> list[Voice]:
        if self._voices is None:
            with self._lock, quiet_output():
                found = self._tts.getProperty("voices")
            self._voices = [Voice(v.id, v.name, tuple(v.languages or ()), self.name) for v in found]
        return list(self._voices)

    def render(self, text: str, voice: str | None, speed: float) -> RawSpeech:
        with self._lock, quiet_output():
            return self._render(text, voice or self.default_voice, round(ESPEAK_NORMAL_WPM * speed))

    def _render(self, text: str, voice: str, rate: int) -> RawSpeech:
        self._errors.clear()
        utterance = _Utterance(time.monotonic() + self.timeout + len(text) / 50.0)
        if self._applied != (voice, rate):
            self._applied = None  # unknown until both are set and the utterance went well
            self._tts.setProperty("voice", voice)
            self._tts.setProperty("rate", rate)
        self._tts.say(text)
        self._wait_until_idle(text, utterance.deadline)
        self._driver.utterance = utterance
        try:
            self._tts.runAndWait()
        except BaseException as err:  # also Ctrl-C: stop espeak, and leave pyttsx3 able to run again
            with contextlib.suppress(Exception):
                self._tts.endLoop()
            if not isinstance(err, Exception):
                self._settle(time.monotonic() + 0.3)
                raise
            reason = "it did not finish in time" if isinstance(err, _EngineTimeout) else str(err)
            raise SpeechError(f"espeak-ng failed to speak {_quote(text)}: {reason}; try again, or reinstall espeak-ng") from err
        finally:
            self._driver.utterance = None
        if self._errors:
            raise SpeechError(
                f"espeak-ng failed to speak {_quote(text)} with voice {voice!r}: {self._errors[0]} "
                "(`coach voices` lists the voices)"
            )
        if not utterance.done.is_set():
            raise SpeechError(f"espeak-ng stopped before finishing {_quote(text)}; try again")
        pcm = np.multiply(np.frombuffer(b"".join(utterance.chunks), "<i2"), np.float32(1 / 32768), dtype=np.float32)
        self._applied = (voice, rate)
        return RawSpeech(pcm, tuple(utterance.marks))

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

    def _on_error(self, name=None, exception=None, **_ignored) -> None:
        self._errors.append(exception if exception is not None else RuntimeError("unknown engine error"))

@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """Send everything written to stdout and stderr, by Python or by C code, to /dev/null.

    pyttsx3 prints on stdout (`Audio saved to ...` for every file it writes; coach's driver
    writes none, but pyttsx3's own code paths may still print) and libespeak-ng may complain
    on stderr; none of that is for the user. Both the Python streams and file descriptors
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

