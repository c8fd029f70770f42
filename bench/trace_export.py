"""`coach export` with the moments of its cold path noted: run by bench_export.py --cold.

Run: python bench/trace_export.py RESULT.json coach-export-arguments...

It runs the real command (coach.cli.main) in this process and writes, as JSON, the
seconds since the interpreter started at which: the helper process was started early,
synthesis began (imports, routine and engine done), this process and the helper spoke
their first text, synthesis ended (with how many texts each side spoke), the WAV writing
began and ended, and the command returned. Nothing is imported ahead of the command:
each module is wrapped by an import hook just after it loads, so the imports cost what
they cost in a real run.
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.util
import json
import runpy
import sys
import time

_STARTED = time.perf_counter() - time.process_time()  # about when the interpreter began
marks: dict[str, float] = {}
counts = {"here": 0, "helper": 0}


def mark(name: str) -> None:
    marks.setdefault(name, round(time.perf_counter() - _STARTED, 4))


def _wrap(module, name: str, before: str | None = None, after: str | None = None, count: str | None = None):
    real = getattr(module, name)

    @functools.wraps(real)
    def wrapper(*args, **kwargs):
        if before:
            mark(before)
        if count:
            counts[count] += 1
        try:
            return real(*args, **kwargs)
        finally:
            if after:
                mark(after)

    setattr(module, name, wrapper)


def _patch_scheduler(module) -> None:
    _wrap(module, "synthesize_shared", before="synthesis begins", after="synthesis ends")
    _wrap(module, "synthesize_into", before="first text here", count="here")
    real_take = module.Helper._take

    def take(self, message):
        if isinstance(message, dict) and "start" in message:
            mark("first text in the helper")
            counts["helper"] += 1
        return real_take(self, message)

    module.Helper._take = take


PATCHES = {
    "coach.early_helper": lambda m: _wrap(m, "start_early", after="helper started early (or not)"),
    "coach.speech.scheduler": _patch_scheduler,
    "coach.export.audio": lambda m: _wrap(m, "write_wav_stream", before="WAV writing begins", after="WAV written"),
    "coach.files": lambda m: _wrap(m, "atomic_writer", before="output file opened"),
}


class _PatchAfterLoad(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            PATCHES[name](module)

        spec.loader.exec_module = exec_module
        return spec


def main() -> None:
    result_path = sys.argv[1]

    def write_result() -> None:
        mark("command returned")
        with open(result_path, "w") as out:
            json.dump({"marks": marks, "texts": counts}, out)

    atexit.register(write_result)  # registered first, so it runs after coach's own
    sys.meta_path.insert(0, _PatchAfterLoad())
    sys.argv = ["coach", *sys.argv[2:]]
    mark("tracer ready")
    runpy.run_module("coach", run_name="__main__", alter_sys=True)  # as `python -m coach` runs it


if __name__ == "__main__":
    main()
