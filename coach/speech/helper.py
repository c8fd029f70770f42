"""The helper process: `python -m coach.speech.helper` speaks part of a batch into the cache.

coach.speech.scheduler starts it and says which texts; the protocol is described there.
"""

from __future__ import annotations

import contextlib
import json
import select
import signal
import sys
from pathlib import Path

from coach import signals
from coach.errors import SpeechError
from coach.speech.cache import SpeechCache, cache_dir, cache_key
from coach.speech.registry import get_engine
from coach.speech.synthesis import synthesize_into


def _asked_to_stop() -> bool:
    """Whether the parent closed our stdin (or sent anything more): checked between texts."""
    readable, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(readable)


def _say(message: dict) -> None:
    print(json.dumps(message), flush=True)


def _start_engine_early(argv: list[str]) -> None:
    """`--engine=NAME`: start that engine before the request comes (coach.early_helper
    starts the helper before it knows the texts). A failure here is met again, and
    reported, when the request names the engine."""
    for arg in argv:
        if arg.startswith("--engine="):
            with contextlib.suppress(SpeechError):
                get_engine(arg.removeprefix("--engine="))


def main(argv: list[str] | None = None) -> int:
    """Speak the texts of the JSON request on stdin into the cache, from the last one down."""
    # Stopped by SIGTERM as coach is: `finally` blocks run, and a cache entry being written is
    # finished or removed whole (signals.deferred), never left as a temporary file.
    signal.signal(signal.SIGTERM, signals.raise_terminated)
    try:
        _start_engine_early(sys.argv[1:] if argv is None else argv)
        line = sys.stdin.readline()
        if not line:  # started early and not needed after all
            return 0
        request = json.loads(line)
        texts, voice, speed = request["texts"], request["voice"], request["speed"]
        engine = get_engine(request["engine"])
        cache = SpeechCache(Path(request["cache"]) if "cache" in request else cache_dir())
        for index in reversed(range(len(texts))):
            if _asked_to_stop():
                return 0
            _say({"start": index})
            synthesize_into(cache, cache_key(texts[index], voice, speed, engine), engine, texts[index], voice, speed)
            _say({"done": index})
    except (SpeechError, ValueError, KeyError, TypeError) as err:
        with contextlib.suppress(OSError):
            _say({"error": str(err)})
        return 1
    except BrokenPipeError:  # the parent has gone
        return 1
    except signals.Terminated:
        return 143
    return 0


if __name__ == "__main__":
    sys.exit(main())
