"""What shell completion costs: at the start of every command, and per TAB press.

Run: .venv/bin/python bench/bench_completion.py [--runs N]

Typer adds completion when the app is turned into a click command (typer.main.get_command),
which every `coach` command does once at start. This measures, each in a fresh process:
- get_command with completion on and off (`app._add_completion`), the median of --runs runs:
  their difference is what completion adds to the start of a command (the target: < 10 ms);
- the whole `coach --version` (start-up as a user sees it, for scale);
- one completion request as the shell makes it on TAB: routine names for `coach start lo`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COACH = Path(sys.executable).with_name("coach")

BUILD = """
import time
import typer.main
import coach.cli as cli
cli.app._add_completion = {flag}
start = time.perf_counter()
typer.main.get_command(cli.app)
print(time.perf_counter() - start)
"""


def build_seconds(flag: bool) -> float:
    out = subprocess.run([sys.executable, "-c", BUILD.format(flag=flag)], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def wall_seconds(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs

    on, off = [], []
    for _ in range(runs):  # interleaved, so a busy moment hits both alike
        on.append(build_seconds(True))
        off.append(build_seconds(False))
    added = statistics.median(on) - statistics.median(off)
    version = statistics.median(wall_seconds([str(COACH), "--version"]) for _ in range(runs))
    env = dict(os.environ, _COACH_COMPLETE="complete_bash", COMP_WORDS="coach start lo", COMP_CWORD="2")
    tab = statistics.median(wall_seconds([str(COACH)], env) for _ in range(runs))

    print(f"building the command, completion on:  {statistics.median(on) * 1000:6.2f} ms (median of {runs})")
    print(f"building the command, completion off: {statistics.median(off) * 1000:6.2f} ms")
    print(f"completion adds to every command start: {added * 1000:+.2f} ms (target < 10 ms)")
    print(f"whole `coach --version`:               {version * 1000:6.0f} ms")
    print(f"one TAB press (routine names):         {tab * 1000:6.0f} ms")
    return 0 if added < 0.010 else 1


if __name__ == "__main__":
    sys.exit(main())
