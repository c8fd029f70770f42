"""A private PulseAudio null sink to play into and record from, for end-to-end audio tests.

    with pulse_null_sink(tmp_path) as pulse:
        pulse.start_recording(tmp_path / "rec.raw")
        subprocess.run([...], env=pulse.env)          # plays into the null sink through ALSA
        recorded = pulse.stop_recording()              # float32 mono at SAMPLE_RATE
        onset_time = pulse.recording_start + index / SAMPLE_RATE   # time.monotonic() scale

The daemon is private (its own runtime dir, HOME and cookie), so tests never touch a
user's sound server and several can run at once. A null sink has no hardware mixing
and no clock of its own, which is what we want to test against.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest

from coach.audio import SAMPLE_RATE

SINK = "test"
_RAW = ["--raw", "--format=s16le", f"--rate={SAMPLE_RATE}", "--channels=1"]
READY_TIMEOUT = 10.0


class PulseNullSink:
    """A running private daemon: `env` for subprocesses, and a recorder of the sink's monitor."""

    def __init__(self, env: dict[str, str], log: Path, daemon: subprocess.Popen[bytes]) -> None:
        self.env = env
        self.log = log
        self._daemon = daemon
        self.recording_start: float | None = None
        self._recorder: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._chunks: list[bytes] = []
        self._arrivals: list[tuple[float, int]] = []

    def start_recording(self, path: Path) -> None:
        """Record the sink's monitor into `path` (raw s16le mono) until stop_recording()."""
        if self._recorder is not None:
            raise RuntimeError("already recording")
        self._chunks, self._arrivals = [], []
        # A short latency makes parec hand over data as it comes, so arrival times
        # tell when each sample was captured (see stop_recording).
        self._recorder = subprocess.Popen(
            ["parec", "-d", f"{SINK}.monitor", *_RAW, "--latency-msec=10"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env, preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read, args=(self._recorder, Path(path)), daemon=True)
        self._reader.start()

    def _read(self, recorder: subprocess.Popen[bytes], path: Path) -> None:
        received = 0
        with open(path, "wb") as out:
            while chunk := os.read(recorder.stdout.fileno(), 4096):
                arrived = time.monotonic()
                out.write(chunk)
                self._chunks.append(chunk)
                received += len(chunk)
                self._arrivals.append((arrived, received // 2))

    def stop_recording(self) -> np.ndarray:
        """Stop the recorder; return what it captured as float32 mono at SAMPLE_RATE.

        Also sets `recording_start`, the time.monotonic() of sample 0: a sample cannot
        arrive before it was captured, so the earliest (arrival - samples so far / rate)
        over all chunks bounds it, within about the 10 ms recorder latency. The last few
        tens of ms before the stop may be lost: leave some silence at the end.
        """
        if self._recorder is None:
            raise RuntimeError("not recording")
        self._recorder.terminate()
        self._recorder.wait(timeout=5)
        self._reader.join(timeout=5)  # it reads up to EOF: all that parec handed over
        _stop_process(self._recorder)
        self._recorder = None
        data = b"".join(self._chunks)
        data = data[: len(data) // 2 * 2]
        if self._arrivals:
            self.recording_start = min(t - n / SAMPLE_RATE for t, n in self._arrivals)
        return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)

    def stop_server(self) -> None:
        """Stop the daemon now, as if the sound server died or the device was unplugged."""
        _stop_process(self._daemon)

    def stop(self) -> None:
        if self._recorder is not None:
            self.stop_recording()


@contextmanager
def pulse_null_sink(tmp_path: Path) -> Iterator[PulseNullSink]:
    """Start a private PulseAudio daemon with a null sink named "test"; skip if PulseAudio is missing."""
    missing = [tool for tool in ("pulseaudio", "pacat", "parec", "pactl") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs PulseAudio ({', '.join(missing)} not found): apt-get install pulseaudio "
                    "pulseaudio-utils libasound2-plugins, or run `make test`")
    if not _has_alsa_pulse_plugin():
        pytest.skip("needs the ALSA PulseAudio plugin: apt-get install libasound2-plugins, or run `make test`")
    home = tmp_path / "pulse-home"
    home.mkdir(parents=True, exist_ok=True)
    # A unix socket path must stay under 108 bytes, which pytest's tmp_path can exceed.
    runtime = Path(tempfile.mkdtemp(prefix="coach-pulse-"))
    env = _client_env(home, runtime)
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, runtime, ignore_errors=True)
        log = tmp_path / "pulseaudio.log"
        # Running in the foreground as our own child (not --daemonize): we know its pid for
        # sure and can always reap it. As root it only warns ("not intended to be run as root").
        daemon_log = cleanup.enter_context(open(log, "wb"))
        daemon = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--use-pid-file=no",
             f"--load=module-null-sink sink_name={SINK} rate={SAMPLE_RATE} channels=1",
             "--load=module-native-protocol-unix", "--log-target=stderr", "--log-time=1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=daemon_log, env=env,
            preexec_fn=_die_with_parent)
        cleanup.callback(_stop_process, daemon)  # SIGTERM, as `pulseaudio -k` would send
        _wait_until_ready(daemon, env, log)
        # An idle null sink suspends and its monitor then skips time: a silent stream keeps it running.
        zeros = cleanup.enter_context(open("/dev/zero", "rb"))
        keep_alive = subprocess.Popen(["pacat", *_RAW, "--latency-msec=20", "-d", SINK], stdin=zeros,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                      preexec_fn=_die_with_parent)
        cleanup.callback(_stop_process, keep_alive)
        _restart_sink_clock(env)
        sink = PulseNullSink(env, log, daemon)
        cleanup.callback(sink.stop)
        yield sink


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the test process dies (killed by a CI timeout)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _has_alsa_pulse_plugin() -> bool:
    plugin = "alsa-lib/libasound_module_pcm_pulse.so"
    return any(Path(d, plugin).exists() for d in ("/usr/lib", "/usr/lib64", *Path("/usr/lib").glob("*-linux-gnu*")))


def _client_env(home: Path, runtime: Path) -> dict[str, str]:
    """The environment in which ALSA programs (simpleaudio, miniaudio, coach) play into our sink."""
    (home / ".asoundrc").write_text("pcm.!default { type pulse }\nctl.!default { type pulse }\n")
    client_conf = home / "pulse-client.conf"
    client_conf.write_text("autospawn = no\n")  # never start a second daemon by accident
    env = dict(os.environ)
    env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime), PULSE_SERVER=f"unix:{runtime}/pulse/native",
               PULSE_CLIENTCONFIG=str(client_conf), PULSE_SINK=SINK)
    env.pop("XDG_CONFIG_HOME", None)  # the cookie lives under it: keep daemon and clients in HOME
    runtime.chmod(0o700)
    return env


def _wait_until_ready(daemon: subprocess.Popen[bytes], env: dict[str, str], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            pytest.fail(f"pulseaudio exited with {daemon.returncode}: {log.read_text(errors='replace')[-2000:]}")
        probe = subprocess.run(["pactl", "list", "short", "sinks"], env=env, capture_output=True, text=True)
        if probe.returncode == 0 and SINK in probe.stdout.split():
            return
        time.sleep(0.05)
    pytest.fail(f"pulseaudio did not come up within {READY_TIMEOUT:g} s: {log.read_text(errors='replace')[-2000:]}")


def _restart_sink_clock(env: dict[str, str]) -> None:
    """Make the null sink render in small blocks from now on.

    Before any stream asks for low latency, a new null sink renders 2 s at once and
    then sleeps: sound played in the daemon's first 2 s would come out late. A suspend
    and resume restarts its clock with the keep-alive stream's 20 ms latency in force.
    """
    for state in ("1", "0"):
        subprocess.run(["pactl", "suspend-sink", SINK, state], env=env, check=True, capture_output=True)


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def sound_regions(samples: np.ndarray, threshold: float = 0.02, min_gap: float = 0.05) -> list[tuple[int, int]]:
    """(first, last + 1) sample index of each stretch louder than `threshold`.

    Stretches closer than `min_gap` seconds are one region (a tone crosses zero often).
    """
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if len(loud) == 0:
        return []
    breaks = np.flatnonzero(np.diff(loud) > min_gap * SAMPLE_RATE)
    starts = np.concatenate(([loud[0]], loud[breaks + 1]))
    ends = np.concatenate((loud[breaks], [loud[-1]])) + 1
    return list(zip(starts.tolist(), ends.tolist()))


def processes_with_env(key: str, value: str) -> list[int]:
    """Pids of live processes whose environment has key=value (the daemon, recorder, keep-alive)."""
    wanted = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                # the state follows the command name, which may itself hold spaces
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found
