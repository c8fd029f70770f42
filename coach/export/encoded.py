"""The session as compressed audio for a phone: m4a (AAC), mp3 and opus (Ogg Opus), with
a chapter per pose and side and UTF-8 tags, encoded by PyAV (FFmpeg's libraries).

PyAV is an optional dependency (`coach[media]`) and takes about 50 ms to import, so it is
imported only when one of these formats is written.

Sample accuracy: every encoder starts with priming samples (AAC 1024, LAME 1105, Opus
312 at 48 kHz). The muxers record them (an MP4 edit list, the LAME/Xing header, Opus
pre-skip), so a player skips them and the first sound plays at its timeline time.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

import coach
from coach import signals
from coach.audio import SAMPLE_RATE
from coach.errors import ExportError, UsageError
from coach.export.audio import pcm_blocks
from coach.export.id3 import id3_tag
from coach.export.islands import encode_in_islands
from coach.export.outline import Chapter, session_chapters, tags, utf8_within
from coach.export.times import milliseconds
from coach.mixer import segments, session_pcm16

if TYPE_CHECKING:  # coach.session pulls in the speech engine; exporting needs only its data
    from coach.session import Session

INSTALL_HINT = "install it with: pip install 'coach[media]' (make start installs it)"


@dataclass(frozen=True)
class Encoding:
    """How one format is made. bitrate None means variable bitrate at `vbr_quality`."""

    muxer: str  # FFmpeg's name for the container
    codec: str
    rate: int  # the encoder's sample rate (Opus only works at 48 kHz and a few lower rates)
    bitrate: int | None
    bitrate_range: tuple[int, int]  # what --bitrate accepts, bits per second
    vbr_quality: int | None = None
    credit_tag: str = "credit"
    options: tuple[tuple[str, str], ...] = ()  # the encoder's own options
    # Frames decode on their own: encode only the sound, in parallel (coach.export.islands).
    islands: bool = False
    # coach writes the ID3 tag itself, before what the muxer writes (coach.export.id3), and
    # the muxer writes none.
    own_id3: bool = False


# Defaults for speech, mono, measured on an hour of coach audio: AAC 48 kbit/s about 3.4 MB,
# MP3 VBR V5 about 5.8 MB, Opus 24 kbit/s about 5.3 MB. AAC and MP3 stay at 22050 Hz, the
# speech's own rate; libopus needs 48 kHz and PyAV resamples for it.
ENCODINGS = {
    # The 'ipod' muxer (what FFmpeg picks for .m4a) keeps only the tags iTunes knows:
    # the credit goes in the description.
    # FFmpeg's 'fast' AAC coder: five times faster than its default (two-loop) on speech and
    # chimes, for files about 4% larger at the same bitrate.
    "m4a": Encoding("ipod", "aac", SAMPLE_RATE, 48_000, (16_000, 128_000), credit_tag="description",
                    options=(("aac_coder", "fast"),), islands=True),
    # Without the bit reservoir every MP3 frame carries its own data (measured: no larger at
    # V5 on coach's audio), so the islands can be encoded apart. LAME's algorithm quality 7
    # (`lame -q 7`; its default is 3) takes a third less time, for a file 14% smaller and
    # PESQ 3.95 instead of 4.03 on the built-in routine (docs/export-formats.md).
    # FFmpeg's own ID3 tag has chapter frames whose sizes strict readers refuse (coach.export.id3).
    "mp3": Encoding("mp3", "libmp3lame", SAMPLE_RATE, None, (8_000, 160_000), vbr_quality=5,
                    options=(("reservoir", "0"), ("compression_level", "7")), islands=True, own_id3=True),
    # libopus spends as long on a frame of silence as on one of speech: only the islands of
    # sound are encoded (coach.export.islands; a few frames of silence settle its decoder).
    "opus": Encoding("ogg", "libopus", 48_000, 24_000, (6_000, 256_000), islands=True),
}
# The session page carries AAC in MP4: every phone browser plays it, and it is the smallest.
PAGE_AUDIO = "m4a"


def have_pyav() -> bool:
    return importlib.util.find_spec("av") is not None


def check_encoder(fmt: str) -> None:
    """Before any work: fail in one line when PyAV is missing."""
    if not have_pyav():
        what = "the session page (html)" if fmt == "html" else f"{fmt.upper()} export"
        raise ExportError(f"{what} needs PyAV (the 'av' package), which is not installed; "
                          f"{INSTALL_HINT}")


def parse_bitrate(text: str, fmt: str, shown: str | None = None) -> int:
    """'48k', '48000' or '48 kbit/s' as bits per second, within what the format's encoder takes.
    shown: the format as the user asked for it, in a message (html, whose audio is m4a)."""
    cleaned = text.strip().lower().replace(" ", "").removesuffix("bit/s").removesuffix("bps")
    scale = 1000 if cleaned.endswith("k") else 1
    try:
        value = int(float(cleaned.removesuffix("k")) * scale)
    except (ValueError, OverflowError):  # OverflowError: 'inf', '1e999'
        raise UsageError(f"--bitrate {text!r} is not a bitrate; give kilobits per second, e.g. --bitrate 64k") from None
    low, high = ENCODINGS[fmt].bitrate_range
    if not low <= value <= high:
        raise UsageError(f"--bitrate for {shown or fmt} must be between {low // 1000}k and {high // 1000}k, got {text}")
    return value


def write_encoded(handle: BinaryIO, session: Session, fmt: str, *, bitrate: int | None = None,
                  progress: Callable[[int, int], None] | None = None, outline: bool = True) -> None:
    """Encode the whole session into `handle` (seekable: the muxers go back to finish their
    headers). With outline, the file also carries the chapters and tags."""
    av = _import_av(fmt)
    enc = ENCODINGS[fmt]
    origin = 0
    if enc.own_id3 and outline:
        origin = handle.write(id3_tag(tags(session), session_chapters(session), _encoder_name(av)))
    handle = _FirstFailureOnly(handle, origin)
    # While FFmpeg holds the file, a stop is only recorded and raised between packets: a
    # signal handler that raised inside PyAV's I/O callbacks (which catch only Exception)
    # had its Ctrl-C or Terminated printed as a traceback.
    with signals.deferred():
        _encode_into(av, handle, session, fmt, enc, bitrate, progress, outline)


def _encode_into(av, handle, session: Session, fmt: str, enc, bitrate: int | None,
                 progress: Callable[[int, int], None] | None, outline: bool) -> None:
    try:
        container = av.open(handle, mode="w", format=enc.muxer,
                            options={"id3v2_version": "0"} if enc.own_id3 else {})
    except av.FFmpegError as err:
        raise ExportError(f"cannot start the {fmt} file: {err}") from None
    try:
        stream = _add_stream(av, container, enc, bitrate)
        if outline and not enc.own_id3:
            _write_outline(container, session, fmt, enc)
        total = session.timeline.length
        if enc.islands:
            container.start_encoding()
            timeline = session.timeline
            # One thread: at the session gain of 1 most sounds are the cached int16 clips as they are.
            sounds = session_pcm16(timeline, session.speech, session.chimes, session.options.volume,
                                   workers=1, speech_pcm16=session.speech_pcm16)

            def mux(packet) -> None:
                packet.stream = stream
                container.mux(packet)
                signals.raise_if_stopped()

            encode_in_islands(av, lambda: _open_encoder(av, enc, bitrate), sounds,
                              [(s.start, s.end) for s in segments(timeline)], total, mux, progress)
        else:
            _encode(container, stream, pcm_blocks(session), total, progress)
        container.close()
    except BaseException as err:
        _close_quietly(container)
        if isinstance(err, av.FFmpegError) and not isinstance(err, OSError):
            raise ExportError(f"the {fmt} encoder failed: {err}; try another format or --bitrate") from None
        raise


def _import_av(fmt: str):
    check_encoder(fmt)
    import av

    missing = ENCODINGS[fmt].codec not in av.codecs_available
    if missing:
        raise ExportError(f"this PyAV has no {ENCODINGS[fmt].codec} encoder, needed for {fmt}; "
                          f"{INSTALL_HINT}, from PyPI's wheels, which include it")
    return av


def _add_stream(av, container, enc: Encoding, bitrate: int | None):
    stream = container.add_stream(enc.codec, rate=enc.rate, layout="mono", options=dict(enc.options))
    _configure(av, stream.codec_context, enc, bitrate)
    return stream


def _open_encoder(av, enc: Encoding, bitrate: int | None):
    """An encoder of its own, set up as the file's stream is (for one island of sound)."""
    context = av.CodecContext.create(enc.codec, "w")
    context.sample_rate = enc.rate
    context.layout = "mono"
    formats = [f.name for f in context.codec.audio_formats]
    context.format = "s16p" if "s16p" in formats else formats[0]
    context.time_base = Fraction(1, enc.rate)
    context.options = dict(enc.options)
    _configure(av, context, enc, bitrate)
    context.open()
    return context


def _configure(av, context, enc: Encoding, bitrate: int | None) -> None:
    if bitrate is not None or enc.bitrate is not None:
        context.bit_rate = bitrate or enc.bitrate
    else:
        # PyAV multiplies global_quality by FF_QP2LAMBDA itself: 5 here is LAME's V5
        # (ffmpeg's command-line habit of 590 would give V9.99).
        context.flags |= av.codec.context.Flags.qscale
        context.global_quality = enc.vbr_quality


def _write_outline(container, session: Session, fmt: str, enc: Encoding) -> None:
    found = tags(session)
    if "credit" in found and enc.credit_tag != "credit":
        found[enc.credit_tag] = found.pop("credit")
    found_chapters = session_chapters(session)
    if enc.muxer == "ogg":
        # FFmpeg 8.1's Ogg chapter writer rounds the seconds and then appends the
        # milliseconds (84.5 s becomes 00:01:25.500), so the CHAPTERxxx comments are
        # written here instead, as Vorbis comments in the OpusTags header.
        found.update(vorbis_chapters(found_chapters))
    else:
        # M4A's chpl box keeps 255 bytes of a name, cut wherever they end (mid-character: a
        # reader then refuses the file): cut here, at a character.
        fit = (lambda title: utf8_within(title, CHPL_NAME_BYTES)) if enc.muxer == "ipod" else str
        container.set_chapters([
            {"id": number, "start": milliseconds(ch.start), "end": milliseconds(ch.end),
             "time_base": Fraction(1, 1000), "metadata": {"title": fit(ch.title)}}
            for number, ch in enumerate(found_chapters, start=1)
        ])
    container.metadata.update(found)


CHPL_NAME_BYTES = 255


def vorbis_chapters(found: list[Chapter]) -> dict[str, str]:
    """The Vorbis comment chapter extension: CHAPTER001=HH:MM:SS.mmm, CHAPTER001NAME=title."""
    out = {}
    for number, chapter in enumerate(found, start=1):
        hours, rest = divmod(milliseconds(chapter.start), 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        seconds, ms = divmod(rest, 1000)
        out[f"CHAPTER{number:03d}"] = f"{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}"
        out[f"CHAPTER{number:03d}NAME"] = chapter.title
    return out


def _encode(container, stream, blocks: Iterator[tuple[int, np.ndarray]], total: int,
            progress: Callable[[int, int], None] | None) -> None:
    import av

    time_base = Fraction(1, SAMPLE_RATE)
    if progress:
        progress(0, total)
    for start, block in blocks:
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        frame.time_base = time_base
        container.mux(stream.encode(frame))
        signals.raise_if_stopped()
        if progress:
            progress(start + len(block), total)
    container.mux(stream.encode(None))  # what the encoder still holds


def _encoder_name(av) -> str:
    major, minor, micro = av.library_versions.get("libavformat", (0, 0, 0))
    return f"coach {coach.__version__} (Lavf{major}.{minor}.{micro})"


class _FirstFailureOnly:
    """The output file as FFmpeg sees it: from `origin` on (what coach wrote before it, such
    as an ID3 tag, is out of its reach), and after a write or seek has failed (a full disk),
    every later one is taken and dropped. The file is thrown away then, and the one error
    goes up as it is; otherwise the muxer goes on writing as it closes, each failure comes
    back into PyAV's I/O callbacks, and PyAV prints all but the first as tracebacks."""

    def __init__(self, handle: BinaryIO, origin: int = 0) -> None:
        self._handle = handle
        self._origin = origin
        self._failed = False
        self._position = 0

    def write(self, data) -> int:
        if not self._failed:
            try:
                written = self._handle.write(data)
            except OSError:
                self._failed = True
                raise
            self._position += len(data)
            return written
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        if not self._failed:
            try:
                self._position = self._handle.seek(offset + self._origin if whence == 0 else offset,
                                                   whence) - self._origin
                return self._position
            except OSError:
                self._failed = True
                raise
        if whence == 0:
            self._position = offset
        elif whence == 1:
            self._position += offset
        return self._position

    def tell(self) -> int:
        return self._handle.tell() - self._origin if not self._failed else self._position

    def __getattr__(self, name):  # flush, fileno, ...: the file's own
        return getattr(self._handle, name)


def _close_quietly(container) -> None:
    # After a failure or Ctrl-C the file is thrown away; closing only frees FFmpeg's
    # buffers, and an error from writing its trailer no longer matters.
    try:
        container.close()
    except Exception:
        pass
