"""How long `coach export -o session.wav` takes, cold and warm, beside `espeak-ng -w`.

Run: .venv/bin/python bench/bench_export.py   (--formats: only the per-format figures)

For the built-in routine and for a generated 60-minute routine it prints the wall time of
the real command (a subprocess, as a user runs it) with an empty speech cache (cold) and
again with the cache filled (warm), and the time `espeak-ng -w` takes to speak the same
text in one process, with the ratio cold / espeak-ng. Cold runs and espeak-ng runs are
repeated (a new empty cache and a new output file each time) and the median is used, as
one run can be off by a tenth of a second on a busy machine. Targets (issue 3): warm
export of a 60-minute session under 3 s; cold within 2x of the espeak-ng baseline.

Then, for each export format (wav, m4a, mp3, opus, html), the warm command's wall and CPU time
(median of three runs for the built-in routine, one for the hour) and the size of the file. Targets (issue 12): the 60-minute session under 10 s as
m4a and mp3, the built-in routine under 1.5 s.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
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


def timed_export(routine: str, out: Path, cache: Path) -> float:
    env = dict(os.environ, COACH_CACHE_DIR=str(cache))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "coach", "export", routine, "-o", str(out), "--force"],
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def espeak_baseline(texts: list[str], folder: Path) -> float:
    """`espeak-ng -w` speaking every text in one process (one line each, as coach speaks them)."""
    script = folder / "script.txt"
    script.write_text("\n".join(texts) + "\n")
    start = time.perf_counter()
    subprocess.run(["espeak-ng", "-s", "175", "-w", str(folder / "espeak.wav"), "-f", str(script)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


REPEATS = 5


def report(label: str, routine_arg: str, folder: Path) -> None:
    routine = load_routine(routine_arg)
    texts = spoken_texts(routine)
    colds = []
    for run in range(REPEATS):
        out = folder / f"{label}-{run}.wav"
        colds.append(timed_export(routine_arg, out, folder / f"cache-{label}-{run}"))
        out.unlink()  # a cold run writes a new file, as a first export does
    cold = statistics.median(colds)
    out = folder / f"{label}.wav"
    warm = min(timed_export(routine_arg, out, folder / f"cache-{label}-0") for _ in range(3))
    base = statistics.median(espeak_baseline(texts, folder) for _ in range(REPEATS))
    import wave

    with wave.open(str(out)) as wav:
        length = wav.getnframes() / wav.getframerate()
    print(f"{label:28} session {length / 60:5.1f} min, {len(texts):4d} texts | cold {cold:6.2f} s | "
          f"warm {warm:5.2f} s | espeak-ng -w {base:5.2f} s | cold/espeak {cold / base:4.2f}x")
    print(f"{'':28} cold runs: {', '.join(f'{c:.2f}' for c in colds)} s")


# ---------------------------------------------------------------------------
# Each export format, warm (issue 12): the real command's wall time and the file's size

EXPORT_FORMATS = ("wav", "m4a", "mp3", "opus", "html")


def timed_format_export(routine: str, out: Path, cache: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command: user + system, all its threads)."""
    env = dict(os.environ, COACH_CACHE_DIR=str(cache))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "coach", "export", routine, "-o", str(out), "--force"],
                   env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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


def main() -> None:
    formats_only = "--formats" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        long = str(long_routine(folder))
        if not formats_only:
            report("built-in leg-stretches", "leg-stretches", folder)
            report("generated 60-minute", long, folder)
            print("targets: warm 60-minute export < 3 s; cold within 2x of espeak-ng -w")
        report_formats("built-in leg-stretches", "leg-stretches", folder, repeats=3)
        report_formats("generated 60-minute", long, folder, repeats=1)
    print("targets (formats, warm): built-in < 1.5 s each; 60-minute m4a and mp3 < 10 s")


if __name__ == "__main__":
    main()
