"""The one place an export is written: to a file that appears only when complete
(`coach.files.atomic_writer`), or to stdout for a text format."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, TextIO

from coach.errors import UsageError
from coach.export.audio import write_wav_stream
from coach.export.captions import render_srt, render_vtt
from coach.export.encoded import write_encoded
from coach.export.formats import ENCODED_FORMATS, PAGE_FORMAT, STDOUT, TEXT_FORMATS, check_output, parse_bitrate_for
from coach.export.page import write_page
from coach.export.script import render_md, render_txt
from coach.export.timeline_json import render_json
from coach.files import atomic_writer

if TYPE_CHECKING:  # coach.session pulls in the speech engine; exporting needs only its data
    from coach.session import Session

# Each text format: the session as one string.
TEXT_RENDERERS: dict[str, Callable[[Session], str]] = {
    "txt": render_txt, "md": render_md, "srt": render_srt, "vtt": render_vtt, "json": render_json,
}


def render_text(session: Session, fmt: str) -> str:
    """The session as txt, md, srt, vtt or json text."""
    if fmt not in TEXT_RENDERERS:
        raise UsageError(f"{fmt!r} is not a text format; use one of {', '.join(TEXT_FORMATS)}")
    return TEXT_RENDERERS[fmt](session)


def write_export(session: Session, output: str, fmt: str | None = None, *, force: bool = False,
                 bitrate: str | None = None, progress: Callable[[int, int], None] | None = None,
                 stdout: TextIO | None = None) -> str:
    """Write the session to `output` (a path, or `-` for stdout) and return the format written.

    bitrate ('64k') is for the compressed formats; progress(done_samples, total_samples)
    is called while audio is written or encoded.
    """
    name = check_output(output, fmt, force, bitrate)
    if output == STDOUT:
        write_to_stdout(render_text(session, name), stdout if stdout is not None else sys.stdout)
        return name
    bits_per_second = parse_bitrate_for(name, bitrate)
    with atomic_writer(output, force=force) as handle:
        if name == "wav":
            write_wav_stream(handle, session, progress)
        elif name in ENCODED_FORMATS:
            write_encoded(handle, session, name, bitrate=bits_per_second, progress=progress)
        elif name == PAGE_FORMAT:
            write_page(handle, session, bitrate=bits_per_second, progress=progress)
        else:
            handle.write(render_text(session, name).encode("utf-8"))
    return name


def write_to_stdout(text: str, stream: TextIO) -> None:
    """Write and flush; a reader that went away (`| head -1`) ends the output quietly."""
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            # Bytes, so the output is UTF-8 whatever the locale says.
            stream.flush()
            _write_all(buffer, text.encode("utf-8"))
            buffer.flush()
        else:
            stream.write(text)
            stream.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit and would print a second error there;
        # point the descriptor at /dev/null so that last flush goes nowhere.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass


def _write_all(binary: BinaryIO, data: bytes) -> None:
    # Under PYTHONUNBUFFERED (python -u) stdout.buffer is a raw file whose write may take
    # only part of the data (a pipe whose reader left); go on until all is written or the
    # pipe reports that it is broken, never dropping the rest silently.
    view = memoryview(data)
    while view:
        view = view[binary.write(view) or 0:]  # None: a non-blocking pipe is full; try again

