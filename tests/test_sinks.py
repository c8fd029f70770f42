"""Audio sinks: the in-memory and caption sinks, opening a device, and playing into a real one.

The e2e tests play through ALSA into a private PulseAudio null sink (tests/pulse.py)
from a subprocess, record the sink's monitor and find the sounds in the recording.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from coach.audio import SAMPLE_RATE
from coach.errors import AudioOutputError, UsageError
from coach.sinks import BACKENDS, CaptionSink, MemorySink, default_backend, open_sink
from tests.pulse import processes_with_env, pulse_null_sink, sound_regions

REPO = Path(__file__).resolve().parents[1]


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


DEVICE_BACKENDS = [
    pytest.param(name, marks=pytest.mark.skipif(not _have(name), reason=f"{name} is not installed"))
    for name in BACKENDS
]


def tone(freq: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# --- sinks without a device ------------------------------------------------------------


def test_memory_sink_records_play_and_stop_times_with_volume_applied():
    clock = FakeClock(10.0)
    sink = MemorySink(clock, sleep=clock.sleep, volume=0.5)
    clip = tone(440, 1.0)

    sink.play(clip)
    clock.now = 10.4
    assert sink.is_playing()
    sink.stop()
    assert not sink.is_playing()
    clock.now = 12.0
    sink.play(clip[:2205])  # 0.1 s

    assert [t for t, _ in sink.plays] == [10.0, 12.0]
    assert sink.stops == [10.4]
    np.testing.assert_allclose(sink.plays[0][1], clip * 0.5, rtol=1e-6)
    assert len(sink.plays[1][1]) == 2205


def test_memory_sink_wait_sleeps_until_the_buffer_ends_in_simulated_time():
    clock = FakeClock()
    sink = MemorySink(clock, sleep=clock.sleep)
    sink.play(tone(440, 2.0))
    clock.now = 0.5
    sink.wait()
    assert clock.now == pytest.approx(2.0)
    assert not sink.is_playing()


def test_memory_sink_keeps_its_own_copy_of_the_samples():
    sink = MemorySink(FakeClock())
    clip = tone(440, 0.1)
    sink.play(clip)
    clip[:] = 0  # the player reuses its mix buffer
    assert np.abs(sink.plays[0][1]).max() > 0.4


def test_memory_sink_can_simulate_a_device_that_disappears():
    clock = FakeClock()
    sink = MemorySink(clock, fails_from=5.0)
    sink.play(tone(440, 0.1))
    clock.now = 5.0
    with pytest.raises(AudioOutputError, match="no audio output"):
        sink.play(tone(440, 0.1))
    assert len(sink.plays) == 1


def test_caption_sink_plays_nothing_but_checks_its_input():
    sink = CaptionSink()
    sink.play(tone(440, 0.5))
    assert not sink.is_playing()
    sink.wait()
    with pytest.raises(ValueError, match="mono"):
        sink.play(np.zeros((10, 2), dtype=np.float32))


def test_negative_or_nan_volume_is_a_usage_error():
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(UsageError, match="volume"):
            CaptionSink(volume=bad)


def test_unknown_backend_is_a_usage_error_listing_the_backends():
    with pytest.raises(UsageError) as caught:
        open_sink("pipewire-magic")
    message = str(caught.value)
    assert "pipewire-magic" in message
    for name in BACKENDS:
        assert name in message


def test_default_backend_is_the_one_that_places_sounds_by_the_device_clock():
    assert default_backend() == "miniaudio"


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_not_installed_says_what_to_install(backend, monkeypatch):
    if backend == "simpleaudio" and sys.version_info >= (3, 12):
        pytest.skip("simpleaudio is refused outright on Python 3.12+")
    monkeypatch.setitem(sys.modules, backend, None)  # makes `import backend` fail
    with pytest.raises(AudioOutputError) as caught:
        open_sink(backend)
    assert f"pip install {backend}" in str(caught.value)
    assert "\n" not in str(caught.value)


class FakeSimpleaudio:
    """Stands in for the simpleaudio module: a device that is busy while a buffer drains, or gone."""

    class SimpleaudioError(Exception):
        pass

    def __init__(self, *, gone: bool = False) -> None:
        self._simpleaudio = self  # simpleaudio._simpleaudio.SimpleaudioError
        self.gone = gone
        self.opened: list[bytes] = []
        self.draining: list[FakePlayObject] = []

    def play_buffer(self, data: bytes, channels: int, width: int, rate: int) -> FakePlayObject:
        if self.gone:
            raise self.SimpleaudioError("Error opening PCM device. -- CODE: -19 -- MSG: No such device")
        if any(play.is_playing() for play in self.draining):  # a bare hw device cannot mix
            raise self.SimpleaudioError("Error opening PCM device. -- CODE: -16 -- MSG: Device or resource busy")
        self.opened.append(data)
        play = FakePlayObject()
        self.draining.append(play)
        return play


class FakePlayObject:
    def __init__(self) -> None:
        self.playing = True  # stop() does not end it: ALSA drains what it was given

    def stop(self) -> None:
        pass

    def is_playing(self) -> bool:
        return self.playing

    def wait_done(self) -> None:
        self.playing = False


def _simpleaudio_sink(monkeypatch, fake: FakeSimpleaudio):
    if sys.version_info >= (3, 12):
        pytest.skip("simpleaudio is refused outright on Python 3.12+")
    from coach.sinks import SimpleaudioSink
    monkeypatch.setitem(sys.modules, "simpleaudio", fake)
    return SimpleaudioSink()


def test_simpleaudio_waits_for_a_busy_device_instead_of_failing(monkeypatch):
    fake = FakeSimpleaudio()
    sink = _simpleaudio_sink(monkeypatch, fake)
    sink.play(tone(440, 0.5))
    sink.play(tone(660, 0.5))  # the first buffer still drains: busy once, then it works
    assert len(fake.opened) == 2
    assert not fake.draining[0].is_playing()
    assert sink.is_playing()


def test_simpleaudio_device_gone_is_one_line_audio_output_error(monkeypatch):
    sink = _simpleaudio_sink(monkeypatch, FakeSimpleaudio(gone=True))
    with pytest.raises(AudioOutputError) as caught:
        sink.play(tone(440, 0.1))
    assert str(caught.value).startswith("no audio output: Error opening PCM device: No such device")
    assert "CODE" not in str(caught.value)


def test_simpleaudio_plays_int16_with_the_volume_applied(monkeypatch):
    fake = FakeSimpleaudio()
    sink = _simpleaudio_sink(monkeypatch, fake)
    sink.set_volume(0.5)
    sink.play(np.array([1.0, -1.0, 0.25, 4.0], dtype=np.float32))
    assert np.frombuffer(fake.opened[0], dtype=np.int16).tolist() == [16384, -16384, 4096, 32767]


# --- no device: one clear line, no ALSA noise ------------------------------------------

OPEN_SCRIPT = textwrap.dedent("""
    import contextlib, sys
    from coach import sinks
    from coach.errors import AudioOutputError
    if sys.argv[2] == "unsilenced":  # the control run: proves the ALSA config below is noisy
        sinks.silence_alsa_errors = lambda: None
        sinks.stderr_to_devnull = contextlib.nullcontext
    try:
        sinks.open_sink(sys.argv[1])
    except AudioOutputError as err:
        print(err)
        sys.exit(err.exit_code)
    print("opened")
""")

# ALSA configurations under which no device opens and libasound complains on stderr.
NO_DEVICE_ALSA = {
    "missing card": 'pcm.!default { type hw card "NoSuchCard" }\nctl.!default { type hw card "NoSuchCard" }\n',
    "sound server down": "pcm.!default { type pulse }\nctl.!default { type pulse }\n",
}


def _no_device_env(tmp_path: Path, asoundrc: str) -> dict[str, str]:
    """ALSA's default device cannot be opened, and no sound server can be reached."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(asoundrc)
    (home / "pulse-client.conf").write_text("autospawn = no\n")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "JACK_", "ALSA_"))}
    env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime), PULSE_CLIENTCONFIG=str(home / "pulse-client.conf"),
               PULSE_SERVER=f"unix:{runtime}/no-such-socket", PYTHONPATH=str(REPO))
    return env


@pytest.mark.parametrize("alsa", NO_DEVICE_ALSA)
@pytest.mark.parametrize("backend", DEVICE_BACKENDS)
def test_no_device_gives_one_line_and_no_alsa_noise(backend, alsa, tmp_path):
    env = _no_device_env(tmp_path, NO_DEVICE_ALSA[alsa])

    def open_in_subprocess(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", OPEN_SCRIPT, backend, mode], env=env,
                              capture_output=True, text=True, timeout=60)

    control = open_in_subprocess("unsilenced")
    assert control.returncode == AudioOutputError.exit_code, control.stdout + control.stderr
    assert "ALSA lib" in control.stderr  # else this configuration would prove nothing

    result = open_in_subprocess("silenced")
    assert result.stderr == ""  # no "ALSA lib confmisc.c:..." lines, no traceback
    assert result.returncode == AudioOutputError.exit_code, result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("no audio output:")
    assert "coach export -o session.wav" in lines[0]


# --- e2e: into a PulseAudio null sink ------------------------------------------------------

# Runs steps at absolute deadlines from one start and prints when each call began and
# returned (time.monotonic() is CLOCK_MONOTONIC, the same clock in every process on Linux).
# Both ends, not one point: a restart of the device waits for its first request, which on a
# busy machine takes 100 ms or more, and the sound changes somewhere inside that span.
PLAY_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from coach.audio import SAMPLE_RATE
    from coach.sinks import open_sink
    backend, steps = sys.argv[1], json.loads(sys.argv[2])
    sink = open_sink(backend)
    def tone(freq, seconds):
        t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
        return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    start = time.monotonic() + 0.3
    called = []
    for at, action, freq, seconds in steps:
        time.sleep(max(0.0, start + at - time.monotonic()))
        began = time.monotonic()
        if action == "play":
            sink.play(tone(freq, seconds))
        else:
            sink.stop()
        called.append([began, time.monotonic()])
    sink.wait()
    time.sleep(0.3)
    sink.close()
    print(json.dumps(called))
""")


def play_and_record(pulse, backend: str, steps: list, path: Path) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Run the steps in a subprocess playing into the null sink; (recording, (began, returned)
    of each call on the recording's time axis)."""
    pulse.start_recording(path)
    env = dict(pulse.env, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", PLAY_SCRIPT, backend, json.dumps(steps)], env=env,
                            capture_output=True, text=True, timeout=60)
    recorded = pulse.stop_recording()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    called = [(began - pulse.recording_start, returned - pulse.recording_start)
              for began, returned in json.loads(result.stdout)]
    return recorded, called


def switch_time(recorded: np.ndarray, before_hz: float, after_hz: float) -> float:
    """When (seconds into the recording) the tone at `after_hz` first outweighs the one at `before_hz`,
    from 20 ms windows every 2 ms: within about 10 ms."""
    window = int(0.02 * SAMPLE_RATE)
    t = np.arange(window) / SAMPLE_RATE

    def strength(hz: float) -> np.ndarray:
        return np.abs(np.convolve(recorded, np.exp(-2j * np.pi * hz * t), mode="valid"))[::44]

    before, after = strength(before_hz), strength(after_hz)
    louder = np.flatnonzero((after > before) & (after > 0.5 * after.max()))  # not in silence
    assert len(louder), f"no {after_hz} Hz in the recording"
    return (louder[0] * 44 + window / 2) / SAMPLE_RATE


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)), n=8 * len(samples)))
    return float(np.argmax(spectrum) * SAMPLE_RATE / (8 * len(samples)))


@pytest.mark.e2e
@pytest.mark.parametrize("backend", DEVICE_BACKENDS)
def test_tone_burst_is_heard_on_time_and_at_its_length(backend, tmp_path):
    with pulse_null_sink(tmp_path) as pulse:
        recorded, called = play_and_record(pulse, backend, [[0.0, "play", 440, 0.4]], tmp_path / "rec.raw")

    regions = sound_regions(recorded)
    assert len(regions) == 1, regions
    first, end = regions[0]
    assert (end - first) / SAMPLE_RATE == pytest.approx(0.4, abs=0.015)
    assert dominant_frequency(recorded[first:end]) == pytest.approx(440, abs=3)
    began, returned = called[0]
    assert began - 0.02 < first / SAMPLE_RATE < returned + 0.06, \
        f"sound started {(first / SAMPLE_RATE - returned) * 1000:.1f} ms after play() returned"


@pytest.mark.e2e
@pytest.mark.parametrize("backend", DEVICE_BACKENDS)
def test_back_to_back_plays_replace_each_other_and_stop_silences(backend, tmp_path):
    # A second between the calls: a restart can take 200 ms on a busy machine, and what is
    # surely the second sound lies between the two spans.
    steps = [[0.0, "play", 440, 2.0],  # cut short by the next play
             [1.0, "play", 660, 2.0],  # cut short by stop
             [2.0, "stop", 0, 0]]
    with pulse_null_sink(tmp_path) as pulse:
        recorded, called = play_and_record(pulse, backend, steps, tmp_path / "rec.raw")
    tail = open_sink_class(backend).stop_tail

    regions = sound_regions(recorded)
    assert len(regions) == 1, regions  # continuous: the second play follows the first at once
    first, end = (index / SAMPLE_RATE for index in regions[0])
    # The stop is timed from the switch to 660 Hz, heard in the recording: that play and the
    # stop both restart the device, so their latencies match (the very first sound of a
    # device opened a moment ago needs not).
    switch = switch_time(recorded, 440, 660)
    (_, _), (play_began, play_returned), (stop_began, stop_returned) = called
    assert first + 0.5 < switch < end - 0.5, (first, switch, end)
    assert switch + (stop_began - play_returned) - 0.03 < end < switch + (stop_returned - play_began) + tail + 0.03, \
        "stop() did not silence in time"

    def between(start: float, until: float) -> np.ndarray:
        return recorded[int(start * SAMPLE_RATE): int(until * SAMPLE_RATE)]

    assert dominant_frequency(between(first + 0.05, switch - 0.05)) == pytest.approx(440, abs=5)
    after = between(switch + tail + 0.02, end - 0.02)
    assert dominant_frequency(after) == pytest.approx(660, abs=5)
    # The first buffer was stopped, not left playing under the second: no 440 Hz once its tail is over.
    spectrum = np.abs(np.fft.rfft(after * np.hanning(len(after))))
    freqs = np.fft.rfftfreq(len(after), 1 / SAMPLE_RATE)
    assert spectrum[np.abs(freqs - 440) < 10].max() < 0.01 * spectrum.max()


AHEAD_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from coach.sinks import open_sink
    sink = open_sink("miniaudio")
    click = (0.5 * np.sin(np.arange(1102) * 2 * np.pi * 880 / 22050)).astype(np.float32)
    t0 = sink.play(click)
    dues = [t0]
    for k, early in enumerate(json.loads(sys.argv[1]), start=1):
        due = t0 + 1.5 * k
        time.sleep(max(0.0, due - early - time.monotonic()))  # handed over this early, varied
        dues.append(sink.play(click, due))
    time.sleep(1.0)
    sink.close()
    print(json.dumps(dues))
""")


@pytest.mark.e2e
def test_miniaudio_places_sounds_handed_ahead_at_their_times_whenever_they_came(tmp_path):
    from tests.test_live_e2e import capture_times

    handed_early = [0.75, 0.4, 0.55, 0.45, 0.65]  # all more than the device's queue (0.3 s)
    with pulse_null_sink(tmp_path) as pulse:
        pulse.start_recording(tmp_path / "rec.raw")
        result = subprocess.run([sys.executable, "-c", AHEAD_SCRIPT, json.dumps(handed_early)],
                                env=dict(pulse.env, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=60)
        time.sleep(0.3)
        recorded = pulse.stop_recording()
        assert result.returncode == 0, result.stderr
        dues = json.loads(result.stdout)
        onsets = [first for first, _ in sound_regions(recorded, threshold=0.05, min_gap=0.3)]
        heard = capture_times(pulse, onsets)
    assert len(onsets) == len(dues), onsets
    assert np.diff(dues) == pytest.approx(1.5, abs=1e-3)  # each due when asked
    # Placed by the device: the intervals heard are the planned ones (a loaded machine may
    # glitch the null sink by a few ms, never by a wake-up's lateness).
    assert np.abs(np.diff(heard) - 1.5).max() < 0.02, np.diff(heard)


def open_sink_class(backend: str):
    from coach import sinks
    return {"simpleaudio": sinks.SimpleaudioSink, "miniaudio": sinks.MiniaudioSink}[backend]


GONE_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from coach.errors import AudioOutputError
    from coach.sinks import open_sink
    sink = open_sink(sys.argv[1])
    beep = np.full(2205, 0.1, dtype=np.float32)
    sink.play(beep)
    print("playing", flush=True)
    sys.stdin.readline()  # the test stops the sound server meanwhile
    started = time.monotonic()
    while time.monotonic() - started < 10:
        try:
            sink.play(beep)
        except AudioOutputError as err:
            print(err)
            sys.exit(err.exit_code)
        time.sleep(0.2)
    print("still playing after 10 s")
""")


@pytest.mark.e2e
@pytest.mark.parametrize("backend", DEVICE_BACKENDS)
def test_device_that_disappears_makes_play_raise_audio_output_error(backend, tmp_path):
    with pulse_null_sink(tmp_path) as pulse:
        player = subprocess.Popen([sys.executable, "-c", GONE_SCRIPT, backend], env=dict(pulse.env, PYTHONPATH=str(REPO)),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert player.stdout.readline() == "playing\n", player.stderr.read()
            pulse.stop_server()
            out, err = player.communicate("go\n", timeout=30)
        finally:
            if player.poll() is None:
                player.kill()
                player.wait()
    assert err == ""
    assert player.returncode == AudioOutputError.exit_code, out
    assert out.startswith("no audio output:") and out.count("\n") == 1


@pytest.mark.e2e
def test_pulse_harness_leaves_no_process_behind(tmp_path):
    with pulse_null_sink(tmp_path) as pulse:
        pulse.start_recording(tmp_path / "rec.raw")
        server = Path(pulse.env["PULSE_SERVER"].removeprefix("unix:"))
        assert server.is_socket()
        running = processes_with_env("PULSE_SERVER", pulse.env["PULSE_SERVER"])
        time.sleep(0.3)
        recorded = pulse.stop_recording()
        pulse.start_recording(tmp_path / "rec2.raw")  # still recording at exit: the harness stops it
    assert len(running) == 3  # daemon, keep-alive, recorder: the check below can see them
    assert len(recorded) / SAMPLE_RATE == pytest.approx(0.3, abs=0.1)  # real time, no gaps
    assert not server.exists()
    left = processes_with_env("PULSE_SERVER", pulse.env["PULSE_SERVER"])
    assert left == [], f"left running: {left}"


# --- the device's clock against ours -------------------------------------------------------

def _simulated_requests(ppm: float, minutes: float, seed: int = 3):
    """(clock time, frames handed) of each request of a device whose clock runs `ppm` fast,
    asking for 50 ms at a time with 6 periods queued, each request late by a random delay
    (now and then by 0.2 s, as beside busy programs); and the clock time each frame plays at."""
    import random

    rng = random.Random(seed)
    period = SAMPLE_RATE // 20
    rate = SAMPLE_RATE * (1 + ppm * 1e-6)
    start = 100.0
    requests = [(start + i * 0.001, i * period) for i in range(6)]  # filling the queue at once
    handed = 6 * period
    while handed < minutes * 60 * SAMPLE_RATE:
        due = start + (handed - 6 * period) / rate  # room in the queue
        late = 0.2 * rng.random() if rng.random() < 0.01 else rng.expovariate(1 / 0.004)
        requests.append((due + late, handed))
        handed += period
    return requests, lambda frame: start + frame / rate


def test_the_device_clock_follows_a_device_that_runs_fast_or_slow():
    from coach.sinks import DeviceClock

    for ppm in (430.0, -300.0):
        requests, plays_at = _simulated_requests(ppm, minutes=40)
        clock = DeviceClock()
        fixed = None
        worst_followed = worst_fixed = 0.0
        for now, handed in requests:
            clock.request(now, handed)
            fixed = fixed or clock.anchor
            if handed % (SAMPLE_RATE * 30) < SAMPLE_RATE // 20 and now > 200:  # every 30 s: where would 0.8 s from now go?
                at = now + 0.8
                anchor_time, anchor_frame = clock.placed_anchor()
                frame = anchor_frame + (at - anchor_time) * SAMPLE_RATE
                naive = fixed[1] + (at - fixed[0]) * SAMPLE_RATE
                # Against where the device's first frame played: the same constant either way.
                worst_followed = max(worst_followed, abs(plays_at(frame) - plays_at(0) - (at - fixed[0])))
                worst_fixed = max(worst_fixed, abs(plays_at(naive) - plays_at(0) - (at - fixed[0])))
        assert worst_fixed > 0.5, (ppm, worst_fixed)  # the drift the clock must follow
        assert worst_followed < 0.015, (ppm, worst_followed)


@pytest.mark.skipif(not _have("miniaudio"), reason="miniaudio is not installed")
def test_opening_miniaudio_leaves_urllib_request_unloaded_until_something_uses_it():
    # miniaudio imports urllib.request for its internet-radio client: 20 ms of a live
    # session's way to its first sound, for nothing there (coach.sinks._defer_urllib_request).
    script = textwrap.dedent("""
        import sys
        from coach import sinks
        sinks._defer_urllib_request()
        import miniaudio
        print("http.client" in sys.modules)
        import urllib.request
        from urllib.request import Request
        request = urllib.request.Request("http://example.invalid/x")
        print(type(request) is Request, request.host, "http.client" in sys.modules)
        print(sys.modules["urllib.request"] is urllib.request is miniaudio.urllib.request)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True", "example.invalid", "True", "True"]
