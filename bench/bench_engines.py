"""Each installed speech engine, cold: start-up, synthesis speed, and a whole `coach export`.

Run: .venv/bin/python bench/bench_engines.py [--runs N] [--engine espeak|piper ...]

For every engine that is installed it prints:
- start: a fresh process importing the engine and loading its voice (Piper: the ONNX model);
- cold synthesis of every text of the built-in routine into an empty speech cache, as a
  multiple of real time (seconds of speech after trimming / seconds taken);
- a cold `coach export -o <tmp>/s.wav --engine <e>` of the built-in routine: a new process
  and an empty cache, so it includes start-up, synthesis, mixing and writing.
Each engine is measured in its own fresh process; each figure is the best of --runs runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
COACH = Path(sys.executable).with_name("coach")


def measure_in_this_process(engine_name: str) -> dict:
    """Start the engine, then synthesize the built-in routine cold (the cache dir is already fresh)."""
    start = time.perf_counter()
    from coach.audio import SAMPLE_RATE
    from coach.routine import load_routine
    from coach.speech import SpeechSettings, get_engine, synthesize_all
    from coach.timeline import TimelineOptions, spoken_texts

    imported = time.perf_counter()
    engine = get_engine(engine_name)
    if hasattr(engine, "load"):  # Piper loads its model on first use; make that its own figure
        engine.load()
    started = time.perf_counter()
    texts = spoken_texts(load_routine(None), TimelineOptions())
    begin = time.perf_counter()
    clips = synthesize_all(texts, SpeechSettings(engine=engine_name))
    synthesis = time.perf_counter() - begin
    speech_seconds = sum(len(c) for c in clips.values()) / SAMPLE_RATE
    return {
        "version": engine.version,
        "import_s": imported - start,
        "load_s": started - imported,
        "texts": len(texts),
        "speech_s": speech_seconds,
        "synthesis_s": synthesis,
    }


def child_run(engine: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="coach-bench-") as tmp:
        env = dict(os.environ, COACH_CACHE_DIR=str(Path(tmp, "cache")), COACH_CONFIG_DIR=str(Path(tmp, "config")))
        done = subprocess.run(
            [sys.executable, __file__, "--child", engine], env=env, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def export_run(engine: str) -> tuple[float, float]:
    """(seconds taken, seconds of audio written) for a cold export of the built-in routine."""
    with tempfile.TemporaryDirectory(prefix="coach-bench-") as tmp:
        env = dict(os.environ, COACH_CACHE_DIR=str(Path(tmp, "cache")), COACH_CONFIG_DIR=str(Path(tmp, "config")))
        output = Path(tmp, "s.wav")
        begin = time.perf_counter()
        done = subprocess.run([str(COACH), "export", "-o", str(output), "--engine", engine],
                              env=env, capture_output=True, text=True, check=False)
        taken = time.perf_counter() - begin
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip() or f"coach export exited {done.returncode}")
        audio_bytes = output.stat().st_size - 44
    return taken, audio_bytes / 2 / 22050


def installed_engines() -> list[str]:
    from coach.speech.piper import missing_reason
    from coach.speech import engine_names

    names = []
    for name in engine_names():
        if name == "piper" and missing_reason():
            print(f"piper: skipped ({missing_reason()})")
            continue
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="best of this many runs (default 1)")
    parser.add_argument("--engine", action="append", help="only this engine (repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_in_this_process(args.child)))
        return
    print(f"{os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")
    for engine in args.engine or installed_engines():
        runs = [child_run(engine) for _ in range(args.runs)]
        best = min(runs, key=lambda r: r["synthesis_s"])
        fastest_start = min(runs, key=lambda r: r["import_s"] + r["load_s"])
        exports = [export_run(engine) for _ in range(args.runs)]
        export_s, export_audio = min(exports)
        print(f"{engine}: {best['version']}")
        print(f"  start (import + load voice) {fastest_start['import_s'] + fastest_start['load_s']:6.2f} s"
              f"   (load alone {fastest_start['load_s']:.2f} s)")
        print(f"  cold synthesis, built-in routine: {best['texts']} texts, {best['speech_s']:.1f} s of speech"
              f" in {best['synthesis_s']:.2f} s = {best['speech_s'] / best['synthesis_s']:.1f}x real time")
        print(f"  cold `coach export` to WAV       {export_s:6.2f} s for {export_audio / 60:.1f} min of audio")


if __name__ == "__main__":
    main()
