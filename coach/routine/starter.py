"""`coach new NAME`: a commented starter routine in the user's routine folder.

The template uses the format's main ideas (poses on each side, a pose done once, a rest,
settle, detail cues) so that it teaches by example; tests check that it validates.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from coach.errors import RoutineError
from coach.files import atomic_write_bytes
from coach.routine.library import user_cues_dir

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

STARTER = '''\
# {title}: a starter routine written by `coach new`. Change anything you like, then check it:
#   coach validate {name}      (says "ok", or one line naming what is wrong and where)
#   coach plan {name}          (every line with its time)
#   coach start {name}
# Every key is described in docs/routines.md. Lines starting with # are comments.

title = {title_toml}
description = "A few gentle stretches lying on your back."
credit = "Written by me."
props = ["mat"]
# language = "de"          # the language of the texts, if not English: picks a matching voice

intro = [
    "Lie on your back with your knees bent and your feet flat on the floor.",
    "Move slowly, stop anything that hurts, and keep breathing.",
]
side_switch = "Now the {{side}} side."        # spoken wherever the side changes
outro = "Roll onto one side and come up slowly."

[defaults]
hold = 40                  # seconds each pose is held, unless a pose sets its own
sides = ["right", "left"]  # poses are done on each side, unless they say sides = []
settle = 4                 # quiet seconds to move into a pose before its hold-start chime
min_hold = 30              # the shortest and longest --minutes may make a hold
max_hold = 90

[[poses]]
name = "Knees to chest"
sides = []                 # done once, both knees together
setup = "Hug both knees in toward your chest."
cues = [
    "Breathe slowly.",
    {{ text = "Let your lower back soften into the mat.", detail = true }},   # left out with --guidance brief
]
release = "Release, and put your feet back on the floor."

[[poses]]
name = "Lying twist"
setup = [
    "Lying twist.",
    "Let both knees roll slowly down to the {{side}}.",       # {{side}} becomes right, then left
]
cues = ["Keep both shoulders on the floor."]
release = "Bring your knees back up to the middle."

[[poses]]
name = "Rest"
rest = true                # a timed rest: its own soft chimes, no midpoint
hold = 60
setup = "Stretch your legs out long and rest."
cues = [{{ text = "Let the floor hold you.", at = 20 }}]   # 20 seconds into the rest
release = "Wiggle your fingers and toes."
'''


def starter_text(name: str) -> str:
    title = name.replace("-", " ").replace("_", " ").strip().capitalize()
    return STARTER.format(name=name, title=title, title_toml=json.dumps(title, ensure_ascii=False))


def write_starter_routine(name: str, *, force: bool = False, folder: Path | None = None) -> Path:
    """Write the starter routine as NAME.toml in the user's routine folder; its path."""
    name = name.removesuffix(".toml")
    if not _NAME.fullmatch(name):
        raise RoutineError(f"{json.dumps(name[:60], ensure_ascii=False)} is not a usable routine name: use "
                           "letters, digits, - and _ (up to 64, starting with a letter or digit), "
                           "e.g. coach new evening-hips")
    folder = folder or user_cues_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        from coach.settings import settings_folder_problem

        why = settings_folder_problem(folder) or err.strerror or err
        raise RoutineError(f"cannot create the routine folder {folder}: {why}") from None
    path = folder / f"{name}.toml"
    if path.is_dir():
        raise RoutineError(f"{path} is a folder; remove or rename it, or choose another routine name")
    atomic_write_bytes(path, starter_text(name).encode("utf-8"), force=force)
    return path
