"""The session page: one self-contained HTML file that plays the session in any browser,
offline. The audio (AAC in MP4, base64) is inside it, with the chapters and the captions
as JSON; page.html holds the markup, style and script, and makes no network request (its
Content-Security-Policy forbids any).

The words shown come from the same `captions()` as the srt and vtt files, so the page,
the captions and the audio agree to the millisecond; within a caption each word lights up
when the speech engine said it is spoken.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, BinaryIO

from coach.export.captions import captions
from coach.export.encoded import PAGE_AUDIO, write_encoded
from coach.export.outline import ARTIST, session_chapters, settings_comment
from coach.export.times import milliseconds
from coach.export.wording import wording
from coach.timeline import Timeline

if TYPE_CHECKING:  # coach.session pulls in the speech engine; exporting needs only its data
    from coach.session import Session

PAGE_MIME = "audio/mp4"
# Markers in page.html, in this order, each once.
_AUDIO_MARK = "@@AUDIO_BASE64@@"
_DATA_MARK = "@@SESSION_JSON@@"
_LANG_MARK = "@@LANG@@"
_TITLE_MARK = "@@TITLE@@"
# The page's own words (its controls' names, the "About" heading), in the routine's language.
PAGE_WORDS = ("play", "pause", "previous", "next", "position", "poses", "about", "props")


def page_data(session: Session) -> dict:
    """What the page's script reads: times in whole milliseconds, as in the captions."""
    routine, timeline = session.routine, session.timeline
    words = wording(routine.language)
    return {
        "title": routine.title,
        "credit": routine.credit,
        "description": routine.description,
        "props": list(routine.props),
        "artist": ARTIST,
        "settings": settings_comment(session),
        "length_ms": milliseconds(timeline.length),
        "mime": PAGE_MIME,
        "chapters": [[milliseconds(ch.start), ch.title] for ch in session_chapters(session)],
        # [start ms, end ms, text, [[ms, n], ...]], one per caption: its n next words are
        # said from ms on. The page wraps the text to its own width.
        "cues": page_cues(timeline),
        "labels": {key: words[key] for key in PAGE_WORDS},
    }


def page_cues(timeline: Timeline) -> list[list]:
    """The captions, each with when its words are said: from the speech engine's word
    times when it gave them, else the whole caption at its start.

    The page splits a caption's text at its spaces, as here: a word of the engine's that
    covers several (a dash after a word, a side such as "left ➡️") is one of those, its
    parts held together by no-break spaces (captions.word_captions)."""
    out: list[list] = []
    for cue in captions(timeline):
        text = " ".join(cue.lines)
        count = len(text.split(" "))
        if len(cue.word_starts) == count:
            groups = [[milliseconds(at), 1] for at in cue.word_starts]
        else:
            groups = [[milliseconds(cue.start), count]]
        out.append([milliseconds(cue.start), milliseconds(cue.end), text, groups])
    return out


def render_page(session: Session, audio: bytes) -> str:
    """The page around already-encoded audio."""
    template = resources.files("coach.export").joinpath("page.html").read_text(encoding="utf-8")
    template = re.sub(r"\n[ \t]+", "\n", template)  # the indentation is for people reading page.html
    # Inside a <script>, "</" would end it early and "<!--" (then "<script") would make the
    # browser read the real end tag as text: no "<" at all, as JSON's escape.
    data = json.dumps(page_data(session), ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    # The template's own markers only, in their order: a routine's text is never searched.
    language = html.escape(session.routine.language or "en", quote=True)
    top, _, rest = template.partition(_LANG_MARK)
    head, _, rest = rest.partition(_TITLE_MARK)
    middle, _, rest = rest.partition(_DATA_MARK)
    before_audio, _, tail = rest.partition(_AUDIO_MARK)
    return "".join([top, language, head, html.escape(session.routine.title), middle, data, before_audio,
                    base64.b64encode(audio).decode("ascii"), tail])


def write_page(handle: BinaryIO, session: Session, *, bitrate: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> None:
    """Encode the audio (in memory: it goes into the page as text), then write the page."""
    audio = io.BytesIO()
    write_encoded(audio, session, PAGE_AUDIO, bitrate=bitrate, progress=progress, outline=False)
    handle.write(render_page(session, audio.getvalue()).encode("utf-8"))
