"""The user's saved settings: a small TOML file in the user's config folder.

Precedence when a session is built: command-line flag, then the routine's own value,
then this file, then the defaults below.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
import sys
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import typer

from coach.errors import SettingsError
from coach.files import atomic_write_bytes, file_in_the_way, open_without_waiting, special_kind

SPEED_RANGE = (0.5, 2.0)
VOLUME_RANGE = (0.0, 1.0)
ENGINES = ("espeak", "piper")
GUIDANCE = ("full", "brief", "minimal")  # coach.routine.GUIDANCE_LEVELS (a test checks)
MAX_SETTINGS_BYTES = 64 * 1024  # a few lines of TOML; more is not coach's settings


@dataclass(frozen=True)
class Settings:
    speed: float = 1.0
    voice: str | None = None
    engine: str = "espeak"
    volume: float = 1.0
    countdown: int = 0
    guidance: str = "full"


def config_dir() -> Path:
    """$COACH_CONFIG_DIR, else the platform's folder for coach (Linux: $XDG_CONFIG_HOME/coach,
    else ~/.config/coach)."""
    override = os.environ.get("COACH_CONFIG_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg is not None and not os.path.isabs(xdg) and os.name == "posix" and sys.platform != "darwin":
        # The XDG spec ignores an empty or relative value; click's get_app_dir takes it as it
        # is, which made the settings a folder "coach" in whatever folder coach ran in.
        return Path.home() / ".config" / "coach"
    return Path(typer.get_app_dir("coach"))


def config_path() -> Path:
    return config_dir() / "config.toml"


def _keys() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Settings))


def check_value(key: str, value: Any, where: str = "") -> Any:
    """A setting's value, converted and range-checked; SettingsError naming the key otherwise."""
    prefix = f"{where}: " if where else ""
    if key not in _keys():
        close = difflib.get_close_matches(key, _keys(), n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else f" (known: {', '.join(_keys())})"
        raise SettingsError(f'{prefix}unknown setting "{key}"{hint}')
    try:
        if key in ("speed", "volume"):
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            low, high = SPEED_RANGE if key == "speed" else VOLUME_RANGE
            if not low <= number <= high:
                raise SettingsError(f"{prefix}{key} must be between {low:g} and {high:g}, got {number:g}")
            return number + 0.0  # -0 is 0
        if key == "countdown":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
                value = int(value)  # "3" from the command line, exactly however long
            if not isinstance(value, int):  # 3.0 from a file, "3.0" from the command line
                number = float(value)
                if not math.isfinite(number) or not number.is_integer():
                    raise ValueError
                value = int(number)
            if not 0 <= value <= 10:
                raise SettingsError(f"{prefix}countdown must be between 0 and 10 seconds, got {value}")
            return value
        if key == "guidance":
            if value not in GUIDANCE:
                raise SettingsError(f"{prefix}guidance must be one of {', '.join(GUIDANCE)}, got {value!r}")
            return value
        if key == "engine":
            if value not in ENGINES:
                raise SettingsError(f"{prefix}engine must be one of {', '.join(ENGINES)}, got {value!r}")
            return value
        if key == "voice":
            if not isinstance(value, str) or not value.strip():
                raise ValueError
            return value.strip()
    except (TypeError, ValueError, OverflowError):
        raise SettingsError(f"{prefix}{key} must be {_EXPECTED[key]}, got {value!r}") from None
    return value


# What each setting takes, for a value of the wrong kind.
_EXPECTED = {
    "speed": f"a number from {SPEED_RANGE[0]:g} to {SPEED_RANGE[1]:g}",
    "volume": f"a number from {VOLUME_RANGE[0]:g} to {VOLUME_RANGE[1]:g}",
    "countdown": "a whole number of seconds from 0 to 10",
    "voice": "a voice name (`coach voices` lists them)",
    "engine": f"one of {', '.join(ENGINES)}",
    "guidance": f"one of {', '.join(GUIDANCE)}",
}


def load_settings(path: Path | None = None) -> Settings:
    """The saved settings, or the defaults when there is no file."""
    path = path or config_path()
    reset = "fix it or run `coach config reset`"
    try:
        # Without waiting (a named pipe in its place would hang every command) and at most a
        # little past the limit (a link to /dev/zero would fill the memory).
        with open(path, "rb", opener=open_without_waiting) as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):  # a folder never gets here: open() refuses it
                raise SettingsError(f"{path} is {special_kind(mode)}, not a settings file; remove it or run "
                                    "`coach config reset`")
            raw = handle.read(MAX_SETTINGS_BYTES + 1)
    except FileNotFoundError:
        return Settings()
    except IsADirectoryError:
        raise SettingsError(f"{path} is a folder, not a settings file; remove it or run `coach config reset`") from None
    except NotADirectoryError:
        raise SettingsError(_folder_is_a_file(path.parent)) from None
    except OSError as err:
        raise SettingsError(f"{path}: cannot be read ({err.strerror}); {reset}") from None
    if len(raw) > MAX_SETTINGS_BYTES:
        raise SettingsError(f"{path} is over {MAX_SETTINGS_BYTES // 1024} KiB, too big to be coach's settings; {reset}")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise SettingsError(f"{path}: not a valid settings file ({err}); {reset}") from None
    values = {}
    for key, value in data.items():
        try:
            values[key] = check_value(key, value, str(path))
        except SettingsError as err:
            raise SettingsError(f"{err}; {reset}") from None
    return Settings(**values)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    path = path or config_path()
    data = {k: v for k, v in asdict(settings).items() if v is not None and v != getattr(Settings(), k)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        import tomli_w  # only to save: every start reads the settings, few write them (3 ms here)

        atomic_write_bytes(path, tomli_w.dumps(data).encode("utf-8"), force=True)
    except OSError as err:
        raise SettingsError(f"{path}: cannot be written ({err.strerror})") from None
    return path


def set_setting(key: str, value: str) -> Settings:
    """Change one saved setting (from the command line: value is a string)."""
    current = load_settings()
    updated = replace(current, **{key: check_value(key, value)})
    save_settings(updated)
    return updated


def _folder_is_a_file(folder: Path) -> str:
    """Why `folder` (the settings folder, or one in it) cannot be one: a file in the way."""
    folder = file_in_the_way(folder) or folder
    how = "COACH_CONFIG_DIR points at it; point it at a folder" if os.environ.get("COACH_CONFIG_DIR") \
        else "move it away"
    return f"{folder} is a file, not the settings folder; {how}"


def settings_folder_problem(path: Path) -> str | None:
    """What is wrong when `path` (in the settings folder) cannot be a folder because the settings
    folder or one above it is a file; None otherwise."""
    return _folder_is_a_file(path) if file_in_the_way(path) else None


def reset_settings() -> tuple[Path, bool]:
    """Remove the settings file (or whatever is in its place): (its path, whether there was one)."""
    path = config_path()
    try:
        if path.is_dir() and not path.is_symlink():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return path, False
    except NotADirectoryError:
        raise SettingsError(_folder_is_a_file(path.parent)) from None
    except OSError as err:
        raise SettingsError(f"{path}: cannot be removed ({err.strerror})") from None
    return path, True
