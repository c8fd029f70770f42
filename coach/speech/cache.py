"""The on-disk speech cache: one file per clip, keyed by everything that changes its sound."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from coach import signals
from coach.audio import SAMPLE_RATE
from coach.early_helper import CLIP_SUFFIX
from coach.early_helper import cache_dir as cache_dir  # there: wanted before the slow imports
from coach.errors import SpeechError
from coach.files import file_in_the_way, read_if_regular
from coach.speech.clip import Clip, Word
from coach.speech.engine import SpeechEngine

log = logging.getLogger(__name__)

# Part of every cache key: bump it whenever polish_speech, word timing or the cache layout
# changes what comes out for the same engine output, so stale clips are never reused.
PROCESSING_VERSION = "polish-10-words-scale-32768"


def cache_key(text: str, voice: str, speed: float, engine: SpeechEngine) -> str:
    """Everything that changes the sound of a clip, hashed."""
    return key_for(text, voice, speed, engine.name, engine.version)


def key_for(text: str, voice: str, speed: float, engine_name: str, engine_version: str) -> str:
    """cache_key from an engine's name and version, for an engine not started (registry.cache_identity)."""
    fields = {
        "text": text,
        "voice": voice,
        "speed": round(float(speed), 4),
        "engine": engine_name,
        "engine_version": engine_version,
        "processing": PROCESSING_VERSION,
        "sample_rate": SAMPLE_RATE,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()


class SpeechCache:
    """One file per clip: a header, 16-bit samples, and the clip's words.

    The header holds a magic string, the sample rate, the sample count, the length of the
    word table and a CRC-32 of samples and table together. The word table is UTF-8 JSON,
    [[text, start sample, end sample], ...], in the order the words are said.

    16 bits, as every export and sound device gets them anyway, halve the size: about
    44 MB for the speech of a 60-minute session.

    A file that is short, long or fails its checksum is deleted and reported as a miss,
    so a damaged entry is synthesized again rather than played as noise. Writes go to a
    temporary name in the same folder and are renamed into place, so a reader (another
    coach process) sees either no file or a whole one. The cache only saves time: when
    it cannot be written, coach goes on without it.
    """

    MAGIC = b"COACHW01"  # was COACHS16 before clips carried their words
    HEADER = struct.Struct("<8sIQII")  # magic, sample rate, sample count, word table bytes, crc32
    SUFFIX = CLIP_SUFFIX

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
        except NotADirectoryError:
            how = "point COACH_CACHE_DIR at a folder" if os.environ.get("COACH_CACHE_DIR") else "move it away"
            blocker = file_in_the_way(self.directory) or self.directory
            raise SpeechError(f"cannot read the speech cache {self.directory}: {blocker} is a file, not a folder; "
                              f"{how}") from None
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

    def get(self, key: str) -> Clip | None:
        """The clip (the int16 samples stored, and its words), or None when it is missing or
        damaged (then deleted)."""
        entry = self._read(key)
        return None if entry is None else Clip.from_pcm16(entry[0], entry[1])

    def _read(self, key: str) -> tuple[np.ndarray, tuple[Word, ...]] | None:
        path = self.path(key)
        try:
            data = read_if_regular(path)
        except OSError:
            return None
        entry = None if data is None else self._decode(data)
        if entry is None:
            log.info("speech cache: %s is damaged; synthesizing it again", path)
            with contextlib.suppress(OSError):
                path.unlink()
        return entry

    def put(self, key: str, pcm: np.ndarray, words: tuple[Word, ...] = ()) -> tuple[np.ndarray, tuple[Word, ...]]:
        """Store int16 samples with their words; returns what the cache now holds for `key`.

        The first entry stored for a key stays: when two processes speak the same text
        at once (coach and its helper where their halves meet, or two exports), espeak
        may render it a few samples apart, and both must go on with the same clip.
        """
        if not self._writable:
            return pcm, words
        samples = memoryview(np.ascontiguousarray(pcm, dtype="<i2")).cast("B")  # no copy of the samples
        table = json.dumps([[w.text, w.start, w.end] for w in words], ensure_ascii=False,
                           separators=(",", ":")).encode("utf-8")
        crc = zlib.crc32(table, zlib.crc32(samples))
        header = self.HEADER.pack(self.MAGIC, SAMPLE_RATE, len(pcm), len(table), crc)
        tmp = None
        # Deferred: a stop between making the temporary file and removing it would leave it behind.
        with signals.deferred():
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=self.SUFFIX)
                with os.fdopen(fd, "wb") as out:
                    out.write(header)
                    out.write(samples)
                    out.write(table)
                signals.raise_if_stopped()  # a stop whose exception was lost: publish nothing after it
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
        return pcm, words

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

    def _decode(self, data: bytes) -> tuple[np.ndarray, tuple[Word, ...]] | None:
        if len(data) < self.HEADER.size:
            return None
        magic, rate, count, table_size, crc = self.HEADER.unpack_from(data)
        payload = memoryview(data)[self.HEADER.size :]
        if (magic != self.MAGIC or rate != SAMPLE_RATE or len(payload) != 2 * count + table_size
                or zlib.crc32(payload) != crc):
            return None
        try:
            table = json.loads(bytes(payload[2 * count :]).decode("utf-8"))
            words = tuple(Word(str(text), int(start), int(end)) for text, start, end in table)
        except (ValueError, TypeError):
            return None
        return np.frombuffer(payload[: 2 * count], "<i2"), words


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
