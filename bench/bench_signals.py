"""Is a signal ever lost? SIGTERM, SIGINT and SIGHUP sent to `coach export` at many moments.

Run: .venv/bin/python bench/bench_signals.py [--runs 300] [--busy 2] [--seed 1] [--last S] [--poses N]

Each run starts the real command (`coach export LONG.toml -o session.wav`, a generated
routine of 60 poses, about two hours of audio) as a user would, waits until coach's own
code has started (its signal handlers are installed; before that the signal belongs to the
Python interpreter, see docs/reliability.md), waits a random delay, and sends one signal.
The delays are spread evenly from 0 to 80% of how long the same export takes without a
signal, so they fall in every phase: importing typer and numpy, parsing, loading the
routine, reading the speech cache, writing the WAV. One run in four starts from an empty
speech cache (delays over the same span), so the signal also lands in synthesis, while a
speech helper process runs.
While it runs, `--busy` CPU-bound loops keep the machine's cores busy (CPython drops a
signal's exception more often when the process is slowed down).

A run is a loss when coach exits 0, leaves the output file or a `.part` file, prints a
traceback or an "Exception ignored" message, exits with another code than 130 / 143 / 129,
prints anything but its "Stopped ..." line, or has not exited 20 s after the signal.
A signal that comes when the work is over (coach had exited, or had renamed the whole file
into place and printed "Wrote ...") is not counted, and the run is repeated with another
delay. Nor is a signal sent when the process was already exiting in the kernel: the bench
reads /proc/PID/stat (its state and the PF_EXITING flag) just before and just after it
sends, and a signal that found the process already exiting or a zombie, and then exited 0,
is shown in a column of its own ("exiting"): the kernel drops it, no program can handle it.
When the process was alive just before and exiting just after, the run stays counted (a loss
if it exited 0): the signal may have come first. Target (issue 14): 0 losses in at least 300
signals. Also printed: the time from the signal to the exit (not a loss when slow, but said).

--last S aims every signal at the last S seconds of a warm export (delays from the warm time
minus S to the warm time): the end of the work, the "Wrote ..." line and Python's exit.
--poses N makes the routine shorter (default 60), so such runs are quicker.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIGNALS = {signal.SIGTERM: (143, "Stopped (terminated)."), signal.SIGINT: (130, "Stopped."),
           signal.SIGHUP: (129, "Stopped (hung up).")}
HUNG_AFTER_S = 20.0
# The work was over before the signal came: the export had exited, or it had renamed the whole
# file into place and said so ("Wrote ...") and was on its way out, or it was already exiting in
# the kernel when the signal was sent (which drops it). None of these is a signal lost.
SENT_TO_AN_EXITING_PROCESS = "exiting"
NOT_COUNTED = ("finished first", "after the work", SENT_TO_AN_EXITING_PROCESS)
PF_EXITING = 0x4  # the kernel's task flag "getting shut down" (include/linux/sched.h)


def coach_command() -> list[str]:
    script = Path(sys.executable).with_name("coach")
    return [str(script)] if script.exists() else [sys.executable, "-m", "coach"]


def long_routine_text(poses: int = 60, seed: int = 5) -> str:
    """Many poses with long, distinct texts: seconds of synthesis from cold, hundreds of MB of WAV."""
    words = ("slowly gently breathe soften release reach lengthen relax settle notice ground shoulders "
             "hips knees spine ankle heel toes belly chest").split()
    rng = random.Random(seed)

    def text(i: int, j: int) -> str:
        return " ".join(rng.choice(words) for _ in range(35)).capitalize() + f" number {i} {j}."

    lines = ['title = "Long generated routine"', "[defaults]", "hold = 20", 'sides = ["right", "left"]']
    for i in range(poses):
        lines += ["[[poses]]", f'name = "Pose {i}"',
                  f'setup = ["{text(i, 0)} Now the {{side}} leg.", "{text(i, 1)}"]',
                  f'release = "{text(i, 2)}"']
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Outcome:
    signum: int
    delay_s: float
    cold: bool
    kind: str  # "ok", one of NOT_COUNTED, or the loss
    stop_s: float | None = None
    detail: str = ""
    before: str = ""  # the process just before and just after the signal was sent (exit_state)
    after: str = ""

    @property
    def counted(self) -> bool:
        return self.kind not in NOT_COUNTED

    @property
    def lost(self) -> bool:
        return self.counted and self.kind != "ok"


def catches_signals(pid: int) -> bool:
    """Whether coach.cli has installed its handlers (SIGTERM is caught from its first lines)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))


def exit_state(pid: int) -> str:
    """"running", "exiting" (in the kernel's exit: PF_EXITING), "zombie", or "gone", from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3, flags 9
    state, flags = fields[0], int(fields[6])
    if state in ("Z", "X"):
        return "zombie"
    return "exiting" if flags & PF_EXITING else "running"


def environment(cache: Path, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update(COACH_CACHE_DIR=str(cache), COACH_CONFIG_DIR=str(config))
    return env


def as_from_a_terminal() -> None:
    # Started in the background (`nohup ... &`), this bench and its children ignore SIGHUP
    # and SIGINT, and coach rightly keeps them ignored: give the child the defaults a command
    # typed at a terminal has, so that every signal is tested.
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def timed_export(routine: Path, out: Path, cache: Path, config: Path) -> float:
    """How long the export takes without a signal, from coach's first line to its exit."""
    process = subprocess.Popen([*coach_command(), "export", str(routine), "-o", str(out), "--force"],
                               env=environment(cache, config), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not catches_signals(process.pid) and process.poll() is None:
        time.sleep(0.001)
    started = time.monotonic()
    _, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"the export without a signal failed: {err.strip()}")
    return time.monotonic() - started


def signal_one_export(routine: Path, folder: Path, cache: Path, config: Path, signum: int,
                      delay_s: float, cold: bool = False) -> Outcome:
    """Start `coach export`, send `signum` `delay_s` after coach's code started, and judge the exit."""
    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    target = out / "session.wav"
    process = subprocess.Popen([*coach_command(), "export", str(routine), "-o", str(target)],
                               env=environment(cache, config), cwd=ROOT, preexec_fn=as_from_a_terminal,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not catches_signals(process.pid):
            if process.poll() is not None:
                return Outcome(signum, delay_s, cold, "did not start", detail=process.stderr.read()[-300:])
            time.sleep(0.0005)
        time.sleep(delay_s)
        if process.poll() is not None:
            process.communicate()
            return Outcome(signum, delay_s, cold, "finished first")
        before = exit_state(process.pid)
        sent = time.monotonic()
        process.send_signal(signum)
        after = exit_state(process.pid)
        try:
            stdout, stderr = process.communicate(timeout=HUNG_AFTER_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return Outcome(signum, delay_s, cold, "hung")
        stop_s = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    code, said = SIGNALS[signum]
    left = sorted(p.name for p in out.iterdir())
    temporary = [p.name for p in cache.glob(".*")] if cache.is_dir() else []
    wrote = stderr.startswith("Wrote ") and left == ["session.wav"]
    if wrote and (process.returncode == code and stderr.strip().endswith(said) or process.returncode == -signum):
        # Killed by the signal itself (-signum; a shell shows the same 143 / 130 / 129): it
        # came while Python was shutting down, after it had put its default handlers back.
        kind = "after the work"
    elif process.returncode == 0 and wrote and before in ("exiting", "zombie"):
        kind = SENT_TO_AN_EXITING_PROCESS  # dropped by the kernel: the exit had begun
    elif process.returncode == 0:
        kind = "exited 0"
    elif left:
        kind = "wrote the file" if "session.wav" in left else "left a .part file"
    elif "Traceback" in stderr or "Exception ignored" in stderr:
        kind = "traceback"
    elif process.returncode != code:
        kind = "wrong exit code"
    elif stderr.strip() not in ("", said) or stdout.strip():
        kind = "unexpected output"
    elif temporary:
        kind = "left a temporary cache file"
    else:
        kind = "ok"
    detail = "" if kind == "ok" else (f"exit {process.returncode} {stop_s:.3f} s after the signal, "
                                      f"process {before} just before it and {after} just after, "
                                      f"files {left + temporary}, stderr {stderr.strip()[-300:]!r}")
    return Outcome(signum, delay_s, cold, kind, stop_s, detail, before, after)


def busy_loops(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="signals to send (default 300)")
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound loops beside it (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--last", type=float, default=None, metavar="S",
                        help="aim every signal at the last S seconds of a warm export")
    parser.add_argument("--poses", type=int, default=60, help="poses in the generated routine (default 60)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    # SIGTERM or Ctrl-C: stop sending after the run in progress, stop the busy loops, report what was seen.
    stopping: list[int] = []
    for own in (signal.SIGTERM, signal.SIGINT):
        signal.signal(own, lambda signum, frame: stopping.append(signum))

    with tempfile.TemporaryDirectory(prefix="bench-signals-") as tmp:
        folder = Path(tmp)
        routine = folder / "long.toml"
        routine.write_text(long_routine_text(args.poses))
        warm, config = folder / "warm-cache", folder / "config"
        loops = busy_loops(args.busy)
        try:
            cold_s = timed_export(routine, folder / "first.wav", warm, config)  # fills the warm cache
            warm_s = statistics.median(timed_export(routine, folder / "again.wav", warm, config) for _ in range(3))
            for name in ("first.wav", "again.wav"):
                (folder / name).unlink()
            span = (f"delays in the last {args.last:.2f} s of the warm time" if args.last is not None
                    else "delays from 0 to 80% of the warm time")
            print(f"export of {args.poses} poses without a signal, {args.busy} busy loops beside it: cold cache "
                  f"{cold_s:.2f} s, warm {warm_s:.2f} s (median of 3); {span}")
            outcomes: list[Outcome] = []
            order = list(SIGNALS)
            while sum(o.counted for o in outcomes) < args.runs and not stopping:
                signum = order[len(outcomes) % len(order)]
                cold = args.last is None and rng.random() < 0.25
                cache = folder / "cold-cache" if cold else warm
                if cold:
                    shutil.rmtree(cache, ignore_errors=True)
                # From cold, the first seconds of synthesis are enough: every text costs the same.
                if args.last is not None:
                    delay = rng.uniform(max(0.0, warm_s - args.last), warm_s)
                else:
                    delay = rng.uniform(0, 0.8 * (min(cold_s, warm_s) if cold else warm_s))
                outcome = signal_one_export(routine, folder, cache, config, signum, delay, cold)
                outcomes.append(outcome)
                if len(outcomes) % 30 == 0:
                    print(f"  {sum(o.counted for o in outcomes)} signals sent, {sum(o.lost for o in outcomes)} lost",
                          flush=True)
                if outcome.lost:
                    print(f"  LOST ({outcome.kind}): {signal.Signals(signum).name} at {delay:.3f} s"
                          f"{' (cold)' if cold else ''}: {outcome.detail}", flush=True)
        finally:
            for loop in loops:
                loop.kill()
                loop.wait()

    report(outcomes)
    return 1 if any(o.lost for o in outcomes) else 0


def report(outcomes: list[Outcome]) -> None:
    sent = [o for o in outcomes if o.counted]
    print(f"{'signal':8} {'sent':>5} {'cold':>5} {'ok':>5} {'lost':>5} {'exiting':>8}  stop time median / p95 / max")
    for signum in SIGNALS:
        mine = [o for o in sent if o.signum == signum]
        times = sorted(o.stop_s for o in mine if o.stop_s is not None)
        p95 = times[int(0.95 * (len(times) - 1))] if times else float("nan")
        print(f"{signal.Signals(signum).name:8} {len(mine):5d} {sum(o.cold for o in mine):5d} "
              f"{sum(o.kind == 'ok' for o in mine):5d} {sum(o.lost for o in mine):5d} "
              f"{sum(o.signum == signum and o.kind == SENT_TO_AN_EXITING_PROCESS for o in outcomes):8d}  "
              + (f"{statistics.median(times):.3f} / {p95:.3f} / {times[-1]:.3f} s" if times else "-"))
    losses: dict[str, int] = {}
    for o in sent:
        if o.lost:
            losses[o.kind] = losses.get(o.kind, 0) + 1
    print(f"total: {len(sent)} signals sent, {sum(o.lost for o in sent)} lost"
          + (f" ({', '.join(f'{n} {k}' for k, n in losses.items())})" if losses else "")
          + "; not counted: " + ", ".join(f"{sum(o.kind == k for o in outcomes)} {k}" for k in NOT_COUNTED))
    slow = sum(1 for o in sent if o.stop_s is not None and o.stop_s > 0.5)
    print(f"stopped later than 0.5 s after the signal: {slow} of {len(sent)}")


if __name__ == "__main__":
    sys.exit(main())
