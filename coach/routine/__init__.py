"""Routines: TOML files in, a validated, frozen `Routine` out.

- model.py     what a routine is (frozen dataclasses, no I/O)
- library.py   where routines are found: the built-in ones and the user's folder
- load.py      reading a file: the only TOML reader
- validate.py  from parsed TOML to a checked Routine, with one clear error per problem
- where.py     finding the line of the file an error is about
- paths.py     whether a path is a file that can be read

The format is documented for people writing routines in docs/routines.md.
"""

from coach.routine.library import (
    DEFAULT_ROUTINE,
    available_routines,
    builtin_cues_dir,
    resolve_routine,
    routine_search_dirs,
    user_cues_dir,
)
from coach.routine.load import MAX_FILE_BYTES, chime_line, load_routine, load_routine_text
from coach.routine.model import (
    CHIME_CLEARANCE,
    CHIME_KINDS,
    CUE_GAP,
    DEFAULT_HOLD,
    DEFAULT_MIN_HOLD,
    DEFAULT_SETTLE,
    DEFAULT_SIDES,
    GUIDANCE_LEVELS,
    MAX_HOLD,
    MAX_SPEED,
    MIN_HOLD,
    MIN_SPEED,
    PLACEHOLDERS,
    WORDS_PER_MINUTE,
    Block,
    Cue,
    Pose,
    Routine,
    estimate_speech_seconds,
    fill_placeholders,
)
from coach.routine.validate import (
    MAX_LINES_PER_LIST,
    MAX_POSES,
    MAX_SESSION_SECONDS,
    MAX_SIDE_NAME_CHARS,
    MAX_SIDES,
    MAX_TEXT_CHARS,
)

__all__ = [
    "CHIME_CLEARANCE", "CHIME_KINDS", "CUE_GAP", "DEFAULT_HOLD", "DEFAULT_ROUTINE", "DEFAULT_SIDES",
    "MAX_FILE_BYTES", "MAX_HOLD", "MAX_LINES_PER_LIST", "MAX_POSES", "MAX_SESSION_SECONDS",
    "MAX_SIDE_NAME_CHARS", "MAX_SIDES", "MAX_SPEED", "MAX_TEXT_CHARS", "MIN_HOLD", "MIN_SPEED",
    "DEFAULT_MIN_HOLD", "DEFAULT_SETTLE", "GUIDANCE_LEVELS",
    "PLACEHOLDERS", "WORDS_PER_MINUTE", "Block", "Cue", "Pose", "Routine", "available_routines",
    "builtin_cues_dir", "chime_line", "estimate_speech_seconds", "fill_placeholders", "load_routine",
    "load_routine_text", "resolve_routine", "routine_search_dirs", "user_cues_dir",
]
