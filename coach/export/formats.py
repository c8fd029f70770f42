"""Which format an export gets, and whether its target can be written: both checked
before any speech is synthesized, so a mistake costs nothing."""

from __future__ import annotations

from pathlib import Path

from coach.errors import UsageError
from coach.export.encoded import PAGE_AUDIO, check_encoder, parse_bitrate
from coach.files import check_target

TEXT_FORMATS = ("txt", "md", "srt", "vtt", "json")
ENCODED_FORMATS = ("m4a", "mp3", "opus")  # compressed audio, through PyAV
PAGE_FORMAT = "html"
# In this order in messages (the first six were the only ones once; scripts match on them).
FORMATS = ("wav", *TEXT_FORMATS, *ENCODED_FORMATS, PAGE_FORMAT)
STDOUT = "-"
# Names people use for the same formats, as a file suffix or a --format value.
_ALIASES = {"wave": "wav", "text": "txt", "markdown": "md", "webvtt": "vtt", "aac": "m4a",
            "htm": "html"}


def pick_format(output: str, fmt: str | None = None) -> str:
    """The export format: `fmt` when given, else from the file suffix; `-` (stdout) defaults to txt."""
    if fmt is not None:
        name = _normalise(fmt)
        if name not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    elif output == STDOUT:
        name = "txt"
    else:
        suffix = Path(output).suffix
        name = _normalise(suffix)
        if name not in FORMATS:
            what = f"suffix {suffix!r}" if suffix else "no suffix"
            raise UsageError(f"cannot tell the format of {output!r} ({what}); name the file "
                             f"*.wav, *.m4a, *.mp3, *.opus, *.html, *.txt, *.md, *.srt, *.vtt or *.json, "
                             "or give --format")
    if output == STDOUT and name not in TEXT_FORMATS:
        what = "the session page" if name == PAGE_FORMAT else f"{name.upper()} audio"
        raise UsageError(f"{what} cannot be written to stdout (-o -); give a file name, "
                         f"e.g. -o session.{name}")
    return name


def suffix_disagrees(output: str, fmt: str) -> str | None:
    """A warning when the file's suffix names another format than the one chosen (--format
    wins, as documented, but a phone or a player goes by the suffix)."""
    if output == STDOUT:
        return None
    suffix = Path(output).suffix
    named = _normalise(suffix)
    if named in FORMATS and named != fmt:
        return (f"{Path(output).name} will hold {fmt} (--format), not the {named} its suffix says; "
                f"phones and players go by the suffix: name it *.{fmt}")
    return None


def _normalise(name: str) -> str:
    name = name.strip().lower().lstrip(".")
    return _ALIASES.get(name, name)


def check_output(output: str, fmt: str | None = None, force: bool = False,
                 bitrate: str | None = None) -> str:
    """The format, after checking the target can be written, the bitrate makes sense and
    the encoder is installed; call it before building the session so that a mistake
    costs no synthesis."""
    if output != STDOUT:
        # A folder, or a name the system refuses, before its format; the example in the suffix asked for.
        wanted = _normalise(fmt) if fmt is not None else ""
        check_target(output, force=force, example=f"session.{wanted if wanted in FORMATS else 'wav'}")
    name = pick_format(output, fmt)
    if bitrate is not None:
        parse_bitrate_for(name, bitrate)
    if name in ENCODED_FORMATS or name == PAGE_FORMAT:
        check_encoder(name)
    return name


def parse_bitrate_for(name: str, bitrate: str | None) -> int | None:
    """--bitrate in bits per second for a compressed format (the page's audio is AAC)."""
    if bitrate is None:
        return None
    if name not in ENCODED_FORMATS and name != PAGE_FORMAT:
        raise UsageError(f"--bitrate is for compressed audio ({', '.join(ENCODED_FORMATS)}, "
                         f"{PAGE_FORMAT}); {name} has none")
    return parse_bitrate(bitrate, PAGE_AUDIO if name == PAGE_FORMAT else name, name)

