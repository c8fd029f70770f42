"""The session as audio: a 16-bit mono WAV written sound by sound, and the same samples
as consecutive blocks for the encoders of the compressed formats (coach.export.encoded)."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from coach.audio import SAMPLE_RATE
from coach.errors import ExportError
from coach.mixer import session_pcm16

if TYPE_CHECKING:  # coach.session pulls in the speech engine; exporting needs only its data
    from coach.session import Session


WAV_HEADER_BYTES = 44


def wav_header(frames: int, rate: int = SAMPLE_RATE) -> bytes:
    """The 44-byte header of a 16-bit mono PCM WAV holding `frames` samples."""
    data_bytes = frames * 2
    if data_bytes > 0xFFFFFFFF - 36:
        raise ExportError(f"the session is {frames / rate / 3600:.1f} hours long, too long for one "
                          "WAV file (4 GiB); export a shorter routine or use --hold")
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16,
                       1, 1, rate, rate * 2, 2, 16, b"data", data_bytes)


def write_wav_stream(handle: BinaryIO, session: Session,
                     progress: Callable[[int, int], None] | None = None) -> int:
    """The whole session as a 16-bit mono WAV, sound by sound: the length is known from the
    timeline, so the header is final before the first sample and nothing is patched after.

    Only the sounds are written. The silence between them (most of a session: the holds)
    is skipped with a seek, which leaves zeros, and as holes on most file systems: an hour's
    export writes and syncs less than half of its bytes.
    """
    total = session.timeline.length
    handle.write(wav_header(total))
    writeback = _Writeback(handle)
    if progress:
        progress(0, total)
    for start, pcm in session_pcm16(session.timeline, session.speech, session.chimes,
                                    session.options.volume, speech_pcm16=session.speech_pcm16):
        if start + len(pcm) > total:
            # A header that disagrees with the data would be a broken file; never keep it.
            raise RuntimeError(f"bug: a sound ends at sample {start + len(pcm)} but the timeline is {total} long")
        handle.seek(WAV_HEADER_BYTES + 2 * start)
        handle.write(memoryview(pcm.astype("<i2", copy=False)).cast("B"))
        writeback.written(WAV_HEADER_BYTES + 2 * (start + len(pcm)))
        if progress:
            progress(start + len(pcm), total)
    handle.truncate(WAV_HEADER_BYTES + 2 * total)  # the silence after the last sound
    if progress:
        progress(total, total)
    return total

class _Writeback:
    """Has the kernel start writing what is written, every few megabytes, so the fsync that
    makes the file whole (coach.files.atomic_writer) waits for the last part only: on an
    hour's export it took 40-50 ms, and 10 ms after this. posix_fadvise(DONTNEED) starts
    the writeback without waiting for it (Linux); where it is missing this does nothing."""

    EVERY = 8 << 20  # bytes

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.started_up_to = 0
        try:
            self.fd = handle.fileno() if hasattr(os, "posix_fadvise") else None
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            self.fd = None

    def written(self, up_to: int) -> None:
        if self.fd is None or up_to - self.started_up_to < self.EVERY:
            return
        try:
            self.handle.flush()
            os.posix_fadvise(self.fd, self.started_up_to, up_to - self.started_up_to, os.POSIX_FADV_DONTNEED)
        except OSError:
            self.fd = None  # only a head start for the fsync: never a reason to fail
            return
        self.started_up_to = up_to


PCM_BLOCK = 1 << 16  # samples per block handed to an encoder: about 3 s


def pcm_blocks(session: Session, block: int = PCM_BLOCK) -> Iterator[tuple[int, np.ndarray]]:
    """The whole session as consecutive 16-bit blocks (start sample, samples), silence
    included, for an encoder that needs every sample; each block is at most `block` long
    and is only valid until the next one is asked for."""
    total = session.timeline.length
    silence = np.zeros(block, dtype=np.int16)
    at = 0
    for start, pcm in session_pcm16(session.timeline, session.speech, session.chimes,
                                    session.options.volume, speech_pcm16=session.speech_pcm16):
        yield from _silence(silence, at, start)
        for offset in range(0, len(pcm), block):
            yield start + offset, pcm[offset:offset + block]
        at = start + len(pcm)
    yield from _silence(silence, at, total)


def _silence(zeros: np.ndarray, start: int, end: int) -> Iterator[tuple[int, np.ndarray]]:
    for at in range(start, end, len(zeros)):
        yield at, zeros[:min(len(zeros), end - at)]
