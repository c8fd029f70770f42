"""The ID3v2.4 tag at the start of an MP3: tags and a chapter per pose, written by coach.

FFmpeg's MP3 muxer writes the CHAP and CTOC frames' sizes as plain 32-bit numbers where
ID3v2.4 wants syncsafe ones (7 bits a byte): from 128 bytes on (about 27 chapters, or one
long chapter name) strict readers find no chapters. It also writes the comment as a TXXX
frame, which players do not show, instead of COMM. So the MP3 is muxed without an ID3 tag
and this one goes before it (coach.export.encoded).

Frames: TIT2 (title), TPE1 (artist), TALB (album), TXXX "credit", COMM (the settings), TSSE
(the encoder), then a CTOC table of contents and one CHAP per chapter (start and end in
milliseconds, with its TIT2). Text is UTF-8 (encoding 3). A CTOC lists at most 255 entries
(its count is one byte): a session with more chapters gets a top-level CTOC of CTOCs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from coach.export.outline import Chapter, utf8_within
from coach.export.times import milliseconds

UTF8 = b"\x03"
NO_OFFSET = b"\xff\xff\xff\xff"  # CHAP: no byte offsets, only times
CTOC_MAX_ENTRIES = 255
# CTOC flags: bit 1 top-level, bit 0 ordered.
_TOP_LEVEL_ORDERED, _ORDERED = b"\x03", b"\x01"
# FFmpeg (and so ffprobe, VLC, PyAV) reads the size of a frame inside a CHAP as a plain number,
# not a syncsafe one: the two agree below 128 bytes. A chapter name of 126 bytes or more (its
# TIT2 then holds 128 or more) was dropped by those readers, so names are cut to 125 bytes.
CHAPTER_NAME_BYTES = 125


def syncsafe(value: int) -> bytes:
    """`value` (under 2**28) in four bytes of seven bits each, as ID3v2.4 sizes are written."""
    if not 0 <= value < 1 << 28:
        raise ValueError(f"an ID3 size must be under 256 MB, got {value}")
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def frame(frame_id: str, body: bytes) -> bytes:
    return frame_id.encode("ascii") + syncsafe(len(body)) + b"\x00\x00" + body


def text_frame(frame_id: str, text: str) -> bytes:
    return frame(frame_id, UTF8 + text.encode("utf-8") + b"\x00")


def user_text_frame(description: str, text: str) -> bytes:
    return frame("TXXX", UTF8 + description.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x00")


def comment_frame(text: str, language: str = "eng") -> bytes:
    return frame("COMM", UTF8 + language.encode("ascii") + b"\x00" + text.encode("utf-8") + b"\x00")


def chapter_frames(found: Sequence[Chapter]) -> list[bytes]:
    """The table of contents and the chapters, times to the millisecond as in the timeline."""
    ids = [f"ch{number}" for number in range(len(found))]
    out = []
    if len(ids) <= CTOC_MAX_ENTRIES:
        out.append(_toc("toc", _TOP_LEVEL_ORDERED, ids))
    else:
        groups = [ids[i:i + CTOC_MAX_ENTRIES] for i in range(0, len(ids), CTOC_MAX_ENTRIES)]
        names = [f"toc{n}" for n in range(1, len(groups) + 1)]
        out.append(_toc("toc", _TOP_LEVEL_ORDERED, names))
        out += [_toc(name, _ORDERED, group) for name, group in zip(names, groups)]
    for element_id, chapter in zip(ids, found):
        times = b"".join(milliseconds(at).to_bytes(4, "big") for at in (chapter.start, chapter.end))
        out.append(frame("CHAP", _element_id(element_id) + times + NO_OFFSET + NO_OFFSET
                         + text_frame("TIT2", utf8_within(chapter.title, CHAPTER_NAME_BYTES))))
    return out


def _toc(element_id: str, flags: bytes, children: Iterable[str]) -> bytes:
    children = list(children)
    return frame("CTOC", _element_id(element_id) + flags + bytes([len(children)])
                 + b"".join(_element_id(child) for child in children))


def _element_id(name: str) -> bytes:
    return name.encode("ascii") + b"\x00"


def id3_tag(tags: dict[str, str], found: Sequence[Chapter], encoder: str) -> bytes:
    """The whole tag: header and frames. `tags` as coach.export.outline.tags gives them."""
    frames = []
    for key, frame_id in (("title", "TIT2"), ("artist", "TPE1"), ("album", "TALB")):
        if tags.get(key):
            frames.append(text_frame(frame_id, tags[key]))
    if tags.get("credit"):
        frames.append(user_text_frame("credit", tags["credit"]))
    if tags.get("comment"):
        frames.append(comment_frame(tags["comment"]))
    frames.append(text_frame("TSSE", encoder))
    frames += chapter_frames(found)
    body = b"".join(frames)
    return b"ID3\x04\x00\x00" + syncsafe(len(body)) + body
