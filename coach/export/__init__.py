"""Writing a session out: the mixed audio (wav), the script (txt, md), captions (srt, vtt)
and the timeline itself (json).

Every format reads the same `Session.timeline`, in integer samples, so a caption starts
on the very sample its speech starts in the audio. One module per family of formats; all
of them go through `writer.write_export`, which writes a file under a temporary name and
renames it only when complete (`-o -` sends a text format to stdout). See
docs/export-formats.md for what each format contains.
"""

from coach.export.captions import CAPTION_LINE_CHARS, CAPTION_MAX_LINES, caption_time, captions, split_caption
from coach.export.formats import FORMATS, STDOUT, TEXT_FORMATS, check_output, pick_format, suffix_disagrees
from coach.export.writer import render_text, write_export, write_to_stdout

__all__ = [
    "CAPTION_LINE_CHARS", "CAPTION_MAX_LINES", "FORMATS", "STDOUT", "TEXT_FORMATS",
    "caption_time", "captions", "check_output", "pick_format", "render_text", "split_caption", "suffix_disagrees",
    "write_export", "write_to_stdout",
]
