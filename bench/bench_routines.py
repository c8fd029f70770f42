"""The library with real speech: each routine's length, how close `coach list`'s estimate is,
and how close `--minutes` lands, for several lengths and speeds.

Run: .venv/bin/python bench/bench_routines.py [--speeds 0.8 1.0 1.3]

For every built-in routine, with espeak-ng (clips come from the speech cache after the
first run): the real length at speed 1 and full guidance, the estimate from words, the
shortest and longest `--minutes` can reach, then the error of `--minutes` for four lengths
across that range at each speed (the promise: within 5 s), and the time a fit takes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coach.length import TOLERANCE_SECONDS, estimate_seconds, fit_holds, length_range  # noqa: E402
from coach.routine import available_routines, load_routine  # noqa: E402
from coach.session import build_session, load_routine_chimes, resolve_options  # noqa: E402
from coach.settings import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speeds", type=float, nargs="+", default=[0.8, 1.0, 1.3])
    speeds = parser.parse_args().speeds
    worst = 0.0
    print(f"{'routine':15} {'real':>7} {'estimate':>9} {'error':>6}   --minutes error (s) at each speed, "
          "4 lengths from shortest to longest")
    for name in sorted(available_routines()):
        routine = load_routine(name)
        chimes = {k: len(v) for k, v in load_routine_chimes(routine).items()}
        real = estimate = None
        errors = []
        fit_ms = []
        for speed in speeds:
            options = resolve_options(routine, Settings(), speed=speed)
            session = build_session(routine, options)
            speech = {t: len(c) for t, c in session.speech.items()}
            timeline_options = options.timeline_options
            if speed == 1.0:
                real = session.timeline.length_s
                estimate = estimate_seconds(routine, timeline_options)
            low, high = length_range(routine, speech, chimes, timeline_options)
            for fraction in (0.0, 0.33, 0.67, 1.0):
                minutes = (low + fraction * (high - low)) / 60
                start = time.perf_counter()
                fit = fit_holds(routine, speech, chimes, timeline_options, minutes)
                fit_ms.append((time.perf_counter() - start) * 1000)
                errors.append(fit.seconds - minutes * 60)
        worst = max([worst] + [abs(e) for e in errors])
        shown = " ".join(f"{e:+.1f}" for e in errors)
        real_text = f"{real / 60:6.2f}m" if real else "      -"
        est_text = f"{estimate / 60:8.2f}m" if estimate else "        -"
        off = f"{(estimate - real) / real * 100:+5.0f}%" if real and estimate else "     -"
        print(f"{name:15} {real_text} {est_text} {off}   {shown}   (fit {max(fit_ms):.0f} ms at most)")
    print(f"worst --minutes error: {worst:.2f} s (promise: {TOLERANCE_SECONDS:g} s)")
    return 0 if worst <= TOLERANCE_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
