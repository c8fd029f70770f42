"""Text to speech: each utterance becomes float32 PCM before it is scheduled, cached on disk.

An engine (today only espeak-ng through pyttsx3) renders raw audio; `synthesize_all`
polishes it (coach.dsp) and keeps it in a cache keyed by everything that changes the
sound, so a second run of the same routine synthesizes nothing.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import math
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
import wave
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np

from coach.audio import SAMPLE_RATE
from coach.dsp import polish_speech
from coach.errors import SpeechError, one_line

log = logging.getLogger(__name__)

MIN_SPEED, MAX_SPEED = 0.5, 2.0
ESPEAK_NORMAL_WPM = 175  # espeak-ng's own default; pyttsx3.init would force 200
DEFAULT_ENGINE = "espeak"
# Part of every cache key: bump it whenever polish_speech (or the cache layout) changes
# what comes out for the same engine output, so stale clips are never reused.
PROCESSING_VERSION = "polish-4"

NO_ESPEAK = "no text-to-speech engine: espeak-ng is not installed (sudo apt-get install espeak-ng)"


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    languages: tuple[str, ...]
    engine: str = DEFAULT_ENGINE


@dataclass(frozen=True)
class SpeechSettings:
    """How to speak. speed: 1.0 is the engine's normal pace (espeak: 175 wpm), 0.5 to 2.0."""

    speed: float = 1.0
    voice: str | None = None  # an id, name or language as `resolve_voice` accepts; None: the engine's default
    engine: str = DEFAULT_ENGINE

    def __post_init__(self) -> None:
        if not (isinstance(self.speed, (int, float)) and MIN_SPEED <= self.speed <= MAX_SPEED):
            raise SpeechError(f"speed {self.speed!r} is out of range: choose {MIN_SPEED} to {MAX_SPEED} (1.0 is normal)")


# --- engines -----------------------------------------------------------------


class SpeechEngine(Protocol):
    """What a text-to-speech engine provides. render() returns raw, unpolished audio."""

    name: str
    version: str  # changes whenever the same text may sound different
    default_voice: str

    def voices(self) -> list[Voice]: ...

    def render(self, text: str, voice: str | None, speed: float) -> np.ndarray:
        """float32 mono at SAMPLE_RATE; voice None means default_voice."""
        ...


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


def _piper_engine() -> SpeechEngine:
    # Imported only when chosen: piper-tts is GPL-3.0-or-later, an optional extra (coach.piper_engine).
    from coach.piper_engine import PiperEngine

    return PiperEngine()


_ENGINE_TYPES: dict[str, Callable[[], SpeechEngine]] = {"espeak": EspeakEngine, "piper": _piper_engine}
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


# --- voices ------------------------------------------------------------------


def list_voices(engine: str = DEFAULT_ENGINE) -> list[Voice]:
    return get_engine(engine).voices()


def list_all_voices() -> tuple[list[Voice], dict[str, str]]:
    """The voices of every engine that starts, and for each one that does not, why (one line)."""
    voices: list[Voice] = []
    unavailable: dict[str, str] = {}
    for name in engine_names():
        try:
            voices.extend(list_voices(name))
        except SpeechError as err:
            unavailable[name] = str(err)
    return voices, unavailable


def resolve_voice(name_or_id: str | None, engine: str = DEFAULT_ENGINE) -> str | None:
    """A voice id from an id, a name or a language ("gmw/en-us", "English (America)", "en-us").

    Exact id or name wins; then a case-insensitive match on id, the id's last part,
    name or language. None stays None (the engine's default voice).
    """
    if name_or_id is None:
        return None
    wanted = name_or_id.strip()
    voices = list_voices(engine)
    for exact in (lambda v: v.id == wanted, lambda v: v.name == wanted):
        match = next((v for v in voices if exact(v)), None)
        if match:
            return match.id
    key = wanted.casefold()
    for v in voices:
        names = {v.id.casefold(), v.id.rsplit("/", 1)[-1].casefold(), v.name.casefold()}
        if key in names or key in {lang.casefold() for lang in v.languages}:
            return v.id
    raise SpeechError(
        f"unknown voice {wanted!r} for {engine}: try {', '.join(_suggest_voices(wanted, voices))} "
        "(`coach voices` lists them all)"
    )


def _suggest_voices(wanted: str, voices: list[Voice], count: int = 4) -> list[str]:
    by_label = {v.name: v for v in voices} | {v.id: v for v in voices}
    close = difflib.get_close_matches(wanted, by_label, n=count, cutoff=0.5)
    picked = list(dict.fromkeys(by_label[label] for label in close))
    english = [v for v in voices if any(lang.startswith("en") for lang in v.languages)]
    for v in english + voices:  # fill up with voices most users of the built-in routines want
        if len(picked) >= count:
            break
        if v not in picked:
            picked.append(v)
    return [f"{v.id!r} ({v.name})" for v in picked[:count]]


# --- synthesis with a cache ----------------------------------------------------


def synthesize(text: str, settings: SpeechSettings = SpeechSettings()) -> np.ndarray:
    """One utterance as polished float32 mono at SAMPLE_RATE (from the cache when it can)."""
    return synthesize_all([text], settings)[text]


def synthesize_all(
    texts: Iterable[str],
    settings: SpeechSettings = SpeechSettings(),
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Every distinct text as polished audio; cached clips are read, the rest synthesized.

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
    clips: dict[str, np.ndarray] = {}
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
    if missing:
        from coach.speech_helper import synthesize_shared  # imported here: it imports this module

        clips.update(synthesize_shared(missing, keys, engine, voice, settings.speed, cache, report))
    return {text: clips[text] for text in unique}


def synthesize_into(cache: SpeechCache, key: str, engine: SpeechEngine, text: str, voice: str, speed: float) -> np.ndarray:
    """Render, polish and cache one text; returns exactly what a later run reads from the cache."""
    pcm = _to_int16(polish_speech(engine.render(text, voice, speed)))
    if not np.any(pcm):  # rarely espeak drops an utterance under heavy load: one more try
        pcm = _to_int16(polish_speech(engine.render(text, voice, speed)))
    if not np.any(pcm):
        raise SpeechError(f"{engine.name} made no sound for {_quote(text)}: use words it can pronounce")
    return _from_int16(cache.put(key, pcm))


def cache_key(text: str, voice: str, speed: float, engine: SpeechEngine) -> str:
    """Everything that changes the sound of a clip, hashed."""
    fields = {
        "text": text,
        "voice": voice,
        "speed": round(float(speed), 4),
        "engine": engine.name,
        "engine_version": engine.version,
        "processing": PROCESSING_VERSION,
        "sample_rate": SAMPLE_RATE,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()


def cache_dir() -> Path:
    """$COACH_CACHE_DIR, else $XDG_CACHE_HOME/coach/speech, else ~/.cache/coach/speech."""
    if os.environ.get("COACH_CACHE_DIR"):
        return Path(os.environ["COACH_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores relative paths
    return base / "coach" / "speech"


class SpeechCache:
    """One file per clip: a header (magic, sample rate, sample count, CRC-32) and 16-bit samples.

    16 bits, as every export and sound device gets them anyway, halve the size: about
    44 MB for the speech of a 60-minute session.

    A file that is short, long or fails its checksum is deleted and reported as a miss,
    so a damaged entry is synthesized again rather than played as noise. Writes go to a
    temporary name in the same folder and are renamed into place, so a reader (another
    coach process) sees either no file or a whole one. The cache only saves time: when
    it cannot be written, coach goes on without it.
    """

    MAGIC = b"COACHS16"
    HEADER = struct.Struct("<8sIQI")  # magic, sample rate, sample count, crc32 of the samples
    SUFFIX = ".clip"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._writable = True

    def writable(self) -> bool:
        """Whether entries can be stored (the folder is created if needed)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return self._writable and os.access(self.directory, os.W_OK)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}{self.SUFFIX}"

    def files(self) -> list[Path]:
        """Every file of the cache: whole clips and temporary ones a killed run left behind.
        Nothing else in the folder (COACH_CACHE_DIR may point anywhere) is ours."""
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.endswith(self.SUFFIX) and p.is_file())
        except FileNotFoundError:
            return []
        except OSError as err:
            raise SpeechError(f"cannot read the speech cache {self.directory}: {err.strerror or err}") from None

    def usage(self) -> tuple[int, int]:
        """(clips, bytes) the cache holds now."""
        sizes = [_size(p) for p in self.files()]
        return len(sizes), sum(sizes)

    def clear(self) -> tuple[int, int]:
        """Delete every clip; (clips, bytes) removed. A coach running meanwhile only loses time."""
        count = size = 0
        for path in self.files():
            bytes_ = _size(path)
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # another coach replaced or removed it first
            except OSError as err:
                raise SpeechError(f"cannot delete {path}: {err.strerror or err}; "
                                  f"{count} clips were removed before it") from None
            count, size = count + 1, size + bytes_
        return count, size

    def get(self, key: str) -> np.ndarray | None:
        """The clip as float32, or None when it is missing or damaged (then deleted)."""
        pcm = self._read(key)
        return None if pcm is None else _from_int16(pcm)

    def _read(self, key: str) -> np.ndarray | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        pcm = self._decode(data)
        if pcm is None:
            log.info("speech cache: %s is damaged; synthesizing it again", path)
            with contextlib.suppress(OSError):
                path.unlink()
        return pcm

    def put(self, key: str, pcm: np.ndarray) -> np.ndarray:
        """Store int16 samples and return the samples the cache now holds for `key`.

        The first entry stored for a key stays: when two processes speak the same text
        at once (coach and its helper where their halves meet, or two exports), espeak
        may render it a few samples apart, and both must go on with the same clip.
        """
        if not self._writable:
            return pcm
        payload = np.ascontiguousarray(pcm, dtype="<i2").tobytes()
        header = self.HEADER.pack(self.MAGIC, SAMPLE_RATE, len(pcm), zlib.crc32(payload))
        tmp = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=self.SUFFIX)
            with os.fdopen(fd, "wb") as out:
                out.write(header)
                out.write(payload)
            first = self._publish(tmp, self.path(key))
            if not first:
                existing = self._read(key)
                if existing is not None:
                    return existing
                os.replace(tmp, self.path(key))  # the other entry was damaged: ours instead
        except OSError as err:
            self._writable = False
            log.info("speech cache %s cannot be written (%s); continuing without it", self.directory, err)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return pcm

    @staticmethod
    def _publish(tmp: str, path: Path) -> bool:
        """Give the whole file `tmp` its name `path` unless that exists; False if it did."""
        try:
            os.link(tmp, path)  # fails, unlike a rename, when the name is taken
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: the last one wins there
            os.replace(tmp, path)
        return True

    def _decode(self, data: bytes) -> np.ndarray | None:
        if len(data) < self.HEADER.size:
            return None
        magic, rate, count, crc = self.HEADER.unpack_from(data)
        payload = memoryview(data)[self.HEADER.size :]
        if magic != self.MAGIC or rate != SAMPLE_RATE or len(payload) != 2 * count or zlib.crc32(payload) != crc:
            return None
        return np.frombuffer(payload, "<i2")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _to_int16(clip: np.ndarray) -> np.ndarray:
    # Same scale as coach.audio.to_int16, in float32: polished speech holds no NaN, and
    # float64 would cost a quarter of a second on a 60-minute session.
    return np.rint(np.clip(clip, -1.0, 1.0) * np.float32(32767.0)).astype(np.int16)


def _from_int16(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / np.float32(32767.0)


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


def _quote(text: str, limit: int = 60) -> str:
    """A text for an error message: one line, shortened, in double quotes."""
    flat = one_line(text)
    if len(flat) > limit:
        flat = flat[: limit - 3].rstrip() + "..."
    return f'"{flat}"'


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"
