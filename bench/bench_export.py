"""How long `coach export -o session.wav` takes, cold and warm, beside `espeak-ng -w`.

Run: .venv/bin/python bench/bench_export.py [--runs N] [--cold | --formats]

For the built-in routine and for a generated 60-minute routine it prints the wall time of
the real command (a subprocess, as a user runs it) with an empty speech cache (cold) and
again with the cache filled (warm), each with its CPU seconds (user + system, coach and its
speech helper process), and the time `espeak-ng -w` takes to speak the same text in one
process, with the ratio cold / espeak-ng. Cold runs (a new empty cache and a new output
file each time) and espeak-ng runs alternate, so both meet the same load when the machine
is shared, and the medians are used. Targets: warm export of a 60-minute session under
3 s (issue 3); cold no slower than espeak-ng -w for the 60-minute session (issue 10).

Then, for each export format (wav, m4a, mp3, opus, html), the warm command's wall and CPU time
(median of three runs for the built-in routine, one for the hour) and the size of the file. Targets (issue 12): the 60-minute session under 10 s as
m4a and mp3, the built-in routine under 1.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_speech import cue_sentences  # noqa: E402
from coach.routine import load_routine  # noqa: E402
from coach.timeline import spoken_texts  # noqa: E402


def long_routine(folder: Path, minutes: float = 60.0) -> Path:
    """A valid routine lasting about `minutes`: 45 s holds, each with three cues."""
    sentences = iter(cue_sentences(2000, seed=11))
    poses = []
    seconds = 0.0
    while seconds < minutes * 60:
        poses.append({
            "name": f"Pose {len(poses) + 1}",
            "setup": [next(sentences), next(sentences)],
            "hold": 45,
            "cues": [next(sentences) for _ in range(3)],
            "release": next(sentences),
        })
        seconds += 2 * (45 + 15)  # two sides, a hold and about 15 s of setup and release
    data = {"title": "Long generated session", "intro": [next(sentences)], "outro": [next(sentences)],
            "side_switch": ["Change to your {side} side."], "defaults": {"sides": ["right", "left"]},
            "poses": poses}
    path = folder / "long.toml"
    path.write_bytes(tomli_w.dumps(data).encode())
    return path


def _adopt_orphans() -> None:
    """Make this process the reaper of its orphaned descendants (Linux): coach's speech
    helper may still be finishing a text when coach exits, and its CPU time then counts
    in RUSAGE_CHILDREN only if someone here waits for it."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            os.waitpid(-1, 0)


def timed(command: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the command and everything it started)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    _reap()  # a helper process that outlived coach by a few milliseconds: its CPU, not its wall time
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timed_export(routine: str, out: Path, cache: Path) -> tuple[float, float]:
    env = dict(os.environ, COACH_CACHE_DIR=str(cache))
    return timed([sys.executable, "-m", "coach", "export", routine, "-o", str(out), "--force"], env)


def espeak_baseline(texts: list[str], folder: Path) -> tuple[float, float]:
    """`espeak-ng -w` speaking every text in one process (one line each, as coach speaks them)."""
    script = folder / "script.txt"
    script.write_text("\n".join(texts) + "\n")
    return timed(["espeak-ng", "-s", "175", "-w", str(folder / "espeak.wav"), "-f", str(script)])


def report(label: str, routine_arg: str, folder: Path, runs: int) -> None:
    """Cold exports (a new empty cache and a new file each) and `espeak-ng -w` runs, one
    after the other in turn, so that both meet the same load on a shared machine; the
    ratio is of the medians, with the median of each pair's own ratio beside it."""
    routine = load_routine(routine_arg)
    texts = spoken_texts(routine)
    colds, bases = [], []
    for run in range(runs):
        out = folder / f"{label}-{run}.wav"
        colds.append(timed_export(routine_arg, out, folder / f"cache-{label}-{run}"))
        out.unlink()  # a cold run writes a new file, as a first export does
        bases.append(espeak_baseline(texts, folder))
    out = folder / f"{label}.wav"
    warms = [timed_export(routine_arg, out, folder / f"cache-{label}-0") for _ in range(3)]
    with wave.open(str(out)) as wav:
        length = wav.getnframes() / wav.getframerate()
    cold, cold_cpu = (statistics.median(x) for x in zip(*colds))
    base, base_cpu = (statistics.median(x) for x in zip(*bases))
    warm, warm_cpu = (statistics.median(x) for x in zip(*warms))
    pairs = statistics.median(c / b for (c, _), (b, _) in zip(colds, bases))
    print(f"{label:24} {length / 60:5.1f} min, {len(texts):3d} texts | cold {cold:5.2f} s (CPU {cold_cpu:5.2f}) | "
          f"warm {warm:5.2f} s (CPU {warm_cpu:5.2f}) | espeak-ng -w {base:5.2f} s (CPU {base_cpu:5.2f}) | "
          f"cold/espeak {cold / base:4.2f}x (pairs {pairs:4.2f}x, CPU {cold_cpu / base_cpu:4.2f}x)")
    print(f"{'':24} cold runs {', '.join(f'{w:.2f}' for w, _ in colds)} s; "
          f"espeak-ng runs {', '.join(f'{w:.2f}' for w, _ in bases)} s")


def where_cold_time_goes(routine_arg: str, folder: Path, runs: int = 3) -> None:
    """Moments of a cold export (bench/trace_export.py), the median of `runs` traced runs,
    in seconds since its interpreter started, and how the texts were split."""
    import json

    traces = []
    for run in range(runs):
        result = folder / f"trace-{run}.json"
        env = dict(os.environ, COACH_CACHE_DIR=str(folder / f"cache-trace-{run}"))
        subprocess.run([sys.executable, str(ROOT / "bench" / "trace_export.py"), str(result), "export", routine_arg,
                        "-o", str(folder / f"trace-{run}.wav"), "--force"], env=env, check=True, capture_output=True)
        (folder / f"trace-{run}.wav").unlink()
        traces.append(json.loads(result.read_text()))
    names = [name for name in traces[0]["marks"] if all(name in t["marks"] for t in traces)]
    moments = sorted((statistics.median(t["marks"][name] for t in traces), name) for name in names)
    print(f"where a cold 60-minute export's time goes (median of {runs} traced runs, seconds since start):")
    print("  " + "; ".join(f"{name} {at:.2f}" for at, name in moments))
    here = statistics.median(t["texts"]["here"] for t in traces)
    helper = statistics.median(t["texts"]["helper"] for t in traces)
    print(f"  texts spoken here {here:.0f}, by the helper {helper:.0f} (a text tried twice counts twice)")


# ---------------------------------------------------------------------------
# Each export format, warm (issue 12): the real command's wall time and the file's size

EXPORT_FORMATS = ("wav", "m4a", "mp3", "opus", "html")


def timed_format_export(routine: str, out: Path, cache: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command: user + system, all its threads)."""
    return timed_export(routine, out, cache)


def report_formats(label: str, routine_arg: str, folder: Path, repeats: int) -> None:
    """Every format from a warm speech cache (filled by a first WAV export): the median of
    `repeats` runs of `coach export -o session.FMT` (wall and CPU time), and the file's size.
    The machine may be shared: the CPU time says what the work costs, the wall time what
    it took with the cores it got (m4a and mp3 use two)."""
    cache = folder / f"format-cache-{label}"
    timed_format_export(routine_arg, folder / "warm-up.wav", cache)
    for fmt in EXPORT_FORMATS:
        out = folder / f"{label}.{fmt}"
        runs = [timed_format_export(routine_arg, out, cache) for _ in range(repeats)]
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        size = out.stat().st_size
        print(f"{label:28} {fmt:5} warm {wall:6.2f} s (CPU {cpu:6.2f} s) | {size / 1e6:7.2f} MB")
        out.unlink()


def load() -> str:
    """The 1, 5 and 15-minute load averages."""
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--formats", action="store_true", help="only the per-format figures")
    parser.add_argument("--cold", action="store_true", help="only the cold/warm WAV figures")
    parser.add_argument("--runs", type=int, default=7, help="cold and espeak-ng runs (default 7)")
    args = parser.parse_args()
    _adopt_orphans()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        long = str(long_routine(folder))
        if not args.formats:
            print(f"median of {args.runs} cold runs and {args.runs} espeak-ng runs, alternating; "
                  f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            report("built-in leg-stretches", "leg-stretches", folder, args.runs)
            report("generated 60-minute", long, folder, args.runs)
            where_cold_time_goes(long, folder)
            print("targets: warm 60-minute export < 3 s; cold no slower than espeak-ng -w (<= 1.0x) for 60 minutes")
        if not args.cold:
            # Wall times are only comparable at the same load; the CPU times say what the work costs.
            print(f"load average {load()} on {os.cpu_count()} cores before the format runs")
            report_formats("built-in leg-stretches", "leg-stretches", folder, repeats=3)
            report_formats("generated 60-minute", long, folder, repeats=1)
            print(f"load average {load()} after them")
            print("targets (formats, warm): built-in < 1.5 s each; 60-minute m4a and mp3 < 10 s")


if __name__ == "__main__":
    main()
