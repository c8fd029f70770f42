"""coach.speech against the real espeak-ng engine (installed by `make test`)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import count_renders

from coach import dsp, speech
from coach.audio import SAMPLE_RATE
from coach.errors import SpeechError
from coach.speech import espeak
from coach.speech import RawSpeech, SpeechCache, SpeechSettings, registry, scheduler, synthesize, synthesize_all

REPO = Path(__file__).resolve().parent.parent
TEXTS = [
    "Lie down on your back with both legs long.",
    "Loop the strap around the ball of your right foot.",
    "Breathe out slowly and let your shoulders soften.",
]


@pytest.fixture
def engine_calls(monkeypatch) -> list[str]:
    """Every text the espeak engine is asked to render during the test."""
    return count_renders(monkeypatch, speech.get_engine("espeak"))


def cache_files(path: Path) -> list[Path]:
    return sorted(path.glob(f"*{SpeechCache.SUFFIX}"))


def edge_silence_ms(x: np.ndarray) -> tuple[float, float]:
    """Milliseconds of near-silence (45 dB below the peak) at the start and at the end."""
    loud = np.flatnonzero(np.abs(x) >= np.abs(x).max() * 10 ** (-45 / 20))
    return 1000 * loud[0] / SAMPLE_RATE, 1000 * (len(x) - 1 - loud[-1]) / SAMPLE_RATE


# --- the audio itself ------------------------------------------------------------


def test_synthesize_returns_speech_as_float_mono(cold_cache):
    clip = synthesize(TEXTS[0], SpeechSettings())
    assert clip.dtype == np.float32 and clip.ndim == 1
    assert 1.0 < len(clip) / SAMPLE_RATE < 5.0  # eight words at 175 wpm
    assert np.max(np.abs(clip)) <= 1.0
    assert dsp.voiced_rms_db(clip) > -30  # actually audible, not silence


def test_speed_changes_the_length_of_the_speech(cold_cache):
    text = TEXTS[1]
    normal = len(synthesize(text, SpeechSettings(speed=1.0)))
    slower = len(synthesize(text, SpeechSettings(speed=0.75)))
    faster = len(synthesize(text, SpeechSettings(speed=1.5)))
    assert slower > normal * 1.15
    assert faster < normal * 0.8


def test_voice_is_applied(cold_cache):
    british = synthesize(TEXTS[0], SpeechSettings(voice="gmw/en"))
    american = synthesize(TEXTS[0], SpeechSettings(voice="en-us"))
    assert len(british) != len(american) or not np.array_equal(british, american)


def test_clips_are_trimmed_level_and_click_free(cold_cache):
    clips = synthesize_all(TEXTS + ["Rest."], SpeechSettings(speed=0.8))
    for text, clip in clips.items():
        lead, tail = edge_silence_ms(clip)
        assert lead <= 20 and tail <= 20, text
        assert dsp.voiced_rms_db(clip) == pytest.approx(dsp.SPEECH_LOUDNESS_DB, abs=1.0), text
        assert dsp.peak_db(clip) <= dsp.PEAK_CEILING_DB + 0.01, text
        edge = dsp.samples(2)
        assert abs(clip[0]) < 1e-3 and abs(clip[-1]) < 1e-3, text
        assert np.max(np.abs(np.diff(clip[:edge]))) < 0.05, text
        assert np.max(np.abs(np.diff(clip[-edge:]))) < 0.05, text


def test_espeak_output_needs_the_trimming(cold_cache):
    # Guards the test above: the raw engine output really has long silent ends.
    raw = speech.get_engine().render(TEXTS[2], None, 1.0).samples
    _lead, tail = edge_silence_ms(raw)
    assert tail > 100


def test_quiet_engine_output_is_brought_to_the_target_loudness():
    raw = speech.get_engine().render(TEXTS[2], None, 1.0).samples * np.float32(0.05)  # 26 dB too quiet
    assert dsp.voiced_rms_db(raw) < -40
    assert dsp.voiced_rms_db(dsp.polish_speech(raw)) == pytest.approx(dsp.SPEECH_LOUDNESS_DB, abs=1.0)


# --- the cache -----------------------------------------------------------------------


def test_second_run_synthesizes_nothing(cold_cache, engine_calls):
    routine = TEXTS + [TEXTS[0], TEXTS[1]]  # repeats are synthesized once
    first = synthesize_all(routine, SpeechSettings())
    assert sorted(engine_calls) == sorted(TEXTS)
    assert len(cache_files(cold_cache)) == len(TEXTS)

    engine_calls.clear()
    second = synthesize_all(routine, SpeechSettings())
    assert engine_calls == []
    assert list(second) == TEXTS
    for text in TEXTS:
        assert np.array_equal(first[text], second[text])


def test_other_speed_or_voice_is_not_served_from_the_cache(cold_cache, engine_calls):
    synthesize(TEXTS[0], SpeechSettings())
    synthesize(TEXTS[0], SpeechSettings(speed=1.2))
    synthesize(TEXTS[0], SpeechSettings(voice="en-us"))
    synthesize(TEXTS[0], SpeechSettings(voice="English (America)"))  # same voice as "en-us"
    assert len(engine_calls) == 3


def test_progress_counts_distinct_texts(cold_cache):
    seen = []
    synthesize_all(TEXTS[:2], SpeechSettings(), progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    seen.clear()
    synthesize_all(TEXTS[:2] + TEXTS[:2], SpeechSettings(), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 2)]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:10], id="header-cut"),
        pytest.param(lambda data: data[:-100] + bytes(b ^ 0x55 for b in data[-100:]), id="bit-flips"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: data + b"\0" * 8, id="too-long"),
    ],
)
def test_damaged_cache_entry_is_synthesized_again_and_replaced(cold_cache, engine_calls, damage, capfd):
    good = synthesize(TEXTS[0], SpeechSettings())
    (entry,) = cache_files(cold_cache)
    entry.write_bytes(damage(entry.read_bytes()))
    engine_calls.clear()

    again = synthesize(TEXTS[0], SpeechSettings())
    assert engine_calls == [TEXTS[0]]
    assert capfd.readouterr() == ("", "")  # repaired silently
    assert len(again) == pytest.approx(len(good), abs=0.02 * SAMPLE_RATE)
    assert dsp.voiced_rms_db(again) == pytest.approx(dsp.SPEECH_LOUDNESS_DB, abs=1.0)  # speech, not noise
    engine_calls.clear()
    synthesize(TEXTS[0], SpeechSettings())
    assert engine_calls == []  # the replaced entry is whole again


def test_cache_writes_leave_no_temporary_files(cold_cache):
    synthesize_all(TEXTS, SpeechSettings())
    # Besides the clips, at most the note of espeak's default voice (if espeak started here).
    others = sorted(p.name for p in cold_cache.iterdir() if p.name != espeak.DEFAULT_VOICE_MEMO)
    assert others == [p.name for p in cache_files(cold_cache)]


ESPEAK_IDENTITY_SCRIPT = """
import sys
from coach.speech.registry import cache_identity, get_engine
print(cache_identity("espeak", None))
engine = get_engine("espeak")
print(cache_identity("espeak", None) == (engine.version, engine.default_voice), cache_identity("espeak", "en-us"))
"""


def test_espeak_tells_its_cache_identity_without_starting_once_a_start_has_noted_its_voice(cold_cache):
    # Fresh processes, as a session starts: the first has never started espeak with this
    # cache, so only a start can tell; the start notes espeak's default voice, and then
    # the identity without a start is exactly the started engine's.
    first = subprocess.run([sys.executable, "-c", ESPEAK_IDENTITY_SCRIPT], capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["None", "True None"]  # a voice by name: only a started engine knows
    again = subprocess.run([sys.executable, "-c", ESPEAK_IDENTITY_SCRIPT], capture_output=True, text=True, timeout=60)
    assert again.stdout.splitlines()[0] != "None"
    assert again.stdout.splitlines()[1] == "True None"


def test_a_warm_espeak_session_plays_cached_clips_without_starting_espeak(cold_cache):
    # Starting espeak takes ~12 ms and holds the output: the sound device waits for it.
    script = """
import sys
from coach.speech.ahead import SpeechAhead
from coach.speech.registry import get_engine
wanted = [("Lie down.", 1.0), ("Breathe.", 1.0)]
if sys.argv[1] == "fill":
    ahead = SpeechAhead("espeak", None)
    ahead.want(wanted)
    assert ahead.wait_for(wanted, timeout=60)
    ahead.close()
else:
    ahead = SpeechAhead("espeak", None)
    ahead.want(wanted)
    assert ahead.wait_for(wanted, timeout=60)
    print(ahead.engine is None, "pyttsx3" in sys.modules, flush=True)
    ahead.want([("Not cached yet.", 1.0)])
    assert ahead.wait_for([("Not cached yet.", 1.0)], timeout=60)
    print(ahead.engine is not None, ahead.synthesized)
    ahead.close()
"""
    fill = subprocess.run([sys.executable, "-c", script, "fill"], capture_output=True, text=True, timeout=120)
    assert fill.returncode == 0, fill.stderr
    warm = subprocess.run([sys.executable, "-c", script, "warm"], capture_output=True, text=True, timeout=120)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.splitlines() == ["True False", "True 1"]


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path, monkeypatch, engine_calls):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("COACH_CACHE_DIR", str(blocker / "speech"))
    clips = synthesize_all(TEXTS[:2], SpeechSettings())
    assert len(engine_calls) == 2 and all(c.size for c in clips.values())


def test_two_processes_filling_one_cache_never_see_half_written_files(cold_cache):
    texts = [f"Hold the stretch and count slowly to number {i}." for i in range(12)]
    script = (
        "import sys; from coach.speech import synthesize_all\n"
        f"clips = synthesize_all({texts!r})\n"
        "print(sum(len(c) for c in clips.values()))\n"
    )
    env = {**os.environ, "COACH_CACHE_DIR": str(cold_cache)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert all(err == "" for _out, err in results), results
    cache = SpeechCache(cold_cache)
    assert len(cache_files(cold_cache)) == len(texts)
    for entry in cache_files(cold_cache):
        assert cache.get(entry.name.removesuffix(SpeechCache.SUFFIX)) is not None
    # Where both spoke a text, both went on with the entry stored first: the same samples.
    assert results[0][0] == results[1][0]


def test_the_first_entry_for_a_key_stays(cold_cache):
    cache = SpeechCache(cold_cache)
    first, second = np.arange(100, dtype=np.int16), np.arange(101, dtype=np.int16)
    assert np.array_equal(cache.put("k", first)[0], first)
    assert np.array_equal(cache.put("k", second)[0], first)  # the later one is told what is there
    assert len(cache.get("k")) == 100
    cache.path("k").write_bytes(b"damaged")
    assert np.array_equal(cache.put("k", second)[0], second)  # a damaged entry does not stay
    assert len(cache.get("k")) == 101
    assert sorted(p.name for p in cold_cache.iterdir()) == ["k.clip"]  # no temporary files left


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_in_an_entrys_place_is_a_miss_not_a_hang(cold_cache):
    # A named pipe in a clip's place made the export wait for a writer for ever (read_bytes
    # opened it blocking). (/dev/zero behind a link, refused the same way, is not tried here:
    # without the check it is read until memory runs out.)
    cache = SpeechCache(cold_cache)
    cold_cache.mkdir(parents=True, exist_ok=True)
    os.mkfifo(cache.path("k"))
    found = []
    reader = threading.Thread(target=lambda: found.append(cache.get("k")), daemon=True)
    reader.start()
    reader.join(timeout=5)
    try:
        assert not reader.is_alive(), "reading the cache entry hangs"
        assert found == [None]
        pcm = np.arange(100, dtype=np.int16)
        assert np.array_equal(cache.put("k", pcm)[0], pcm)
        assert len(cache.get("k")) == 100  # a whole entry in its place
    finally:
        if reader.is_alive():  # let the stuck reader go
            with contextlib.suppress(OSError):
                os.close(os.open(cache.path("k"), os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_in_place_of_espeaks_voice_note_is_no_note_not_a_hang(cold_cache):
    # The note of espeak's default voice, beside the clips: read_text() waited for a writer.
    cold_cache.mkdir(parents=True)
    note = cold_cache / espeak.DEFAULT_VOICE_MEMO
    os.mkfifo(note)
    found = []
    reader = threading.Thread(target=lambda: found.append(espeak._remembered_default_voices()), daemon=True)
    reader.start()
    reader.join(timeout=5)
    try:
        assert not reader.is_alive(), "reading the note hangs"
        assert found == [{}]
        espeak._remember_default_voice("1.0", "en")  # cannot replace the pipe: only a head start lost
    finally:
        if reader.is_alive():  # let the stuck reader go
            with contextlib.suppress(OSError):
                os.close(os.open(note, os.O_WRONLY | os.O_NONBLOCK))


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COACH_CACHE_DIR", str(tmp_path / "mine"))
    assert speech.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("COACH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert speech.cache_dir() == tmp_path / "xdg" / "coach" / "speech"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not allowed by the XDG spec
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert speech.cache_dir() == tmp_path / "home" / ".cache" / "coach" / "speech"


# --- voices and engines --------------------------------------------------------------


def test_list_voices_has_english():
    voices = speech.list_voices()
    assert len(voices) > 10
    assert any(v.id == "gmw/en-us" and "en-us" in v.languages for v in voices)
    assert all(v.engine == "espeak" for v in voices)


@pytest.mark.parametrize("asked", ["gmw/en-us", "English (America)", "english (america)", "en-us", "EN-US"])
def test_resolve_voice_by_id_name_or_language(asked):
    assert speech.resolve_voice(asked) == "gmw/en-us"


def test_resolve_voice_none_means_the_default():
    assert speech.resolve_voice(None) is None


def test_unknown_voice_lists_some_voices():
    with pytest.raises(SpeechError) as caught:
        synthesize(TEXTS[0], SpeechSettings(voice="Klingon (Imperial)"))
    message = str(caught.value)
    ids = {v.id for v in speech.list_voices()}
    assert "Klingon (Imperial)" in message and "coach voices" in message
    assert any(f"'{voice_id}'" in message for voice_id in ids)
    assert "\n" not in message


def test_unknown_engine():
    with pytest.raises(SpeechError, match="unknown speech engine 'festival'.*espeak"):
        speech.get_engine("festival")
    with pytest.raises(SpeechError, match="festival"):
        synthesize(TEXTS[0], SpeechSettings(engine="festival"))


@pytest.mark.parametrize("speed", [0.49, 2.01, 0, -1])
def test_speed_out_of_range(speed):
    with pytest.raises(SpeechError, match="0.5 to 2.0"):
        SpeechSettings(speed=speed)


# --- failures ----------------------------------------------------------------------


def test_engine_error_event_becomes_a_speech_error_naming_the_text():
    engine = speech.get_engine()
    long_text = "Please say this with a voice that does not exist " + "and go on " * 20
    with pytest.raises(SpeechError) as caught:
        engine.render(long_text, "no/such-voice", 1.0)  # pyttsx3 reports this only as an `error` event
    message = str(caught.value)
    assert '"Please say this with a voice' in message and "no/such-voice" in message
    assert len(message) < 300
    # The engine is still usable afterwards.
    assert len(engine.render(TEXTS[0], None, 1.0)) > SAMPLE_RATE


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_refused(cold_cache, text):
    with pytest.raises(SpeechError, match="empty text"):
        synthesize(text, SpeechSettings())


def test_text_that_makes_no_sound_is_refused(cold_cache, monkeypatch):
    engine = speech.get_engine()
    monkeypatch.setattr(engine, "render", lambda text, voice, speed: RawSpeech(np.zeros(SAMPLE_RATE, np.float32)))
    with pytest.raises(SpeechError, match='made no sound for "Mmm."'):
        synthesize("Mmm.", SpeechSettings())
    assert cache_files(cold_cache) == []  # nothing silent was cached


def test_missing_espeak_gives_one_clear_error(monkeypatch):
    import pyttsx3

    def no_library(*_args, **_kwargs):
        raise RuntimeError("This means you probably do not have eSpeak or eSpeak-ng installed!")

    monkeypatch.setattr(registry, "_engines", {})
    monkeypatch.setattr(pyttsx3, "init", no_library)
    with pytest.raises(SpeechError) as caught:
        synthesize(TEXTS[0], SpeechSettings())
    assert str(caught.value) == speech.NO_ESPEAK
    assert "sudo apt-get install espeak-ng" in str(caught.value)


def test_missing_libespeak_in_a_fresh_process(cold_cache):
    # The real path: libespeak-ng.so.1 cannot be loaded at all.
    script = (
        "import ctypes\n"
        "real = ctypes.cdll.LoadLibrary\n"
        "def load(name):\n"
        "    if 'espeak' in str(name): raise OSError(f'{name}: cannot open shared object file')\n"
        "    return real(name)\n"
        "ctypes.cdll.LoadLibrary = load\n"
        "from coach.errors import SpeechError\n"
        "from coach.speech import synthesize\n"
        "try:\n"
        "    synthesize('Hello.')\n"
        "except SpeechError as err:\n"
        "    print(err)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == speech.NO_ESPEAK
    assert result.stderr == ""


def test_engine_chatter_never_reaches_the_terminal(cold_cache, capfd):
    print("before", flush=True)
    synthesize_all(TEXTS, SpeechSettings())
    speech.list_voices()
    print("after", flush=True)
    out, err = capfd.readouterr()
    assert out == "before\nafter\n"  # no "Audio saved to ...", and stdout works again afterwards
    assert err == ""


def test_concurrent_callers_get_their_own_text(cold_cache):
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def speak(text: str, speed: float) -> None:
        try:
            results[f"{text}@{speed}"] = len(synthesize(text, SpeechSettings(speed=speed)))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=speak, args=(TEXTS[1], s)) for s in (0.75, 1.5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert results[f"{TEXTS[1]}@0.75"] > results[f"{TEXTS[1]}@1.5"] * 1.5


def test_an_utterance_that_never_finishes_is_an_error_not_a_hang(monkeypatch):
    engine = speech.get_engine()
    from pyttsx3.drivers import _espeak

    monkeypatch.setattr(engine, "timeout", 0.2)
    monkeypatch.setattr(_espeak, "Synth", lambda *args, **kwargs: 0)  # espeak never calls back
    with pytest.raises(SpeechError, match='"Stay here.".*did not finish'):
        engine.render("Stay here.", None, 1.0)
    monkeypatch.undo()
    assert len(engine.render(TEXTS[0], None, 1.0)) > SAMPLE_RATE  # and it recovers


# --- the helper process for long batches -------------------------------------------------

LONG_BATCH = [f"Hold the stretch and breathe out slowly, count {i}." for i in range(14)]


@pytest.fixture
def helper_for_small_batches(monkeypatch):
    monkeypatch.setattr(scheduler, "HELPER_MIN_CHARS", 200)


@pytest.fixture
def helpers(monkeypatch) -> list[scheduler.Helper]:
    """Every helper started during the test."""
    started: list[scheduler.Helper] = []
    real_start = scheduler.Helper.start.__func__

    def start(cls, *args, **kwargs):
        helper = real_start(cls, *args, **kwargs)
        if helper is not None:
            started.append(helper)
        return helper

    monkeypatch.setattr(scheduler.Helper, "start", classmethod(start))
    return started


def fake_helper(monkeypatch, code: str) -> None:
    monkeypatch.setattr(scheduler, "HELPER_COMMAND", [sys.executable, "-c", code])


def test_a_helper_only_for_long_batches_on_several_cores(monkeypatch):
    assert not scheduler.wants_helper(["x" * 100] * 5)  # starting it would cost more than it saves
    assert scheduler.wants_helper(["x" * 100] * 100)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert not scheduler.wants_helper(["x" * 100] * 100)


def test_long_batch_is_shared_with_a_helper_process(cold_cache, engine_calls, helper_for_small_batches, monkeypatch):
    # Slow this process down, as a busy core would: the helper, working from the end,
    # must then take a larger share, and the two meet without leaving a gap.
    engine = speech.get_engine("espeak")
    counting_render = engine.render
    monkeypatch.setattr(engine, "render", lambda *args: (time.sleep(0.3), counting_render(*args))[1])
    seen = []
    clips = synthesize_all(LONG_BATCH, SpeechSettings(), progress=lambda done, total: seen.append(done))
    monkeypatch.setattr(engine, "render", counting_render)
    assert list(clips) == LONG_BATCH
    spoken_here = list(dict.fromkeys(engine_calls))  # a rare silent render is tried once more
    assert 0 < len(spoken_here) < len(LONG_BATCH) / 2  # the rest was spoken by the helper
    assert spoken_here == LONG_BATCH[: len(spoken_here)]  # from the start, in order
    assert seen == sorted(seen) and seen[-1] == len(LONG_BATCH)
    assert len(cache_files(cold_cache)) == len(LONG_BATCH)

    engine_calls.clear()
    again = synthesize_all(LONG_BATCH, SpeechSettings())
    assert engine_calls == []
    for text in LONG_BATCH:
        assert np.array_equal(clips[text], again[text])  # cold and warm runs give the same samples
        assert dsp.voiced_rms_db(clips[text]) == pytest.approx(dsp.SPEECH_LOUDNESS_DB, abs=1.0)


def test_the_helper_works_from_the_end_and_stops_when_asked(cold_cache):
    texts = [f"Breathe in, and out, number {i}." for i in range(40)]
    request = {"texts": texts, "voice": speech.get_engine().default_voice, "speed": 1.0, "engine": "espeak"}
    env = dict(os.environ, COACH_CACHE_DIR=str(cold_cache))
    helper = subprocess.Popen(scheduler.HELPER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=env, text=True)
    helper.stdin.write(json.dumps(request) + "\n")
    helper.stdin.flush()
    assert json.loads(helper.stdout.readline()) == {"start": 39}
    assert json.loads(helper.stdout.readline()) == {"done": 39}
    helper.stdin.close()  # stop: it finishes the text it is on and starts no other
    messages = [{"start": 39}, {"done": 39}] + [json.loads(line) for line in helper.stdout]
    assert helper.wait(timeout=30) == 0
    count = len(messages) // 2
    assert messages == [m for i in range(39, 39 - count, -1) for m in ({"start": i}, {"done": i})]
    assert count < len(texts)  # it stopped before the end of the list
    assert len(cache_files(cold_cache)) == count


def test_a_helper_that_dies_is_made_up_for(cold_cache, engine_calls, helper_for_small_batches, monkeypatch):
    fake_helper(monkeypatch, "import sys; sys.exit(3)")
    seen = []
    clips = synthesize_all(LONG_BATCH, SpeechSettings(), progress=lambda done, total: seen.append(done))
    assert sorted(engine_calls) == sorted(LONG_BATCH)
    assert all(clip.size for clip in clips.values())
    assert seen == sorted(seen) and seen[-1] == len(LONG_BATCH)


def test_a_helper_that_dies_halfway_is_made_up_for(cold_cache, engine_calls, helper_for_small_batches, monkeypatch):
    # It claims the last two texts, finishes one (without storing it) and dies.
    fake_helper(monkeypatch, 'import sys; sys.stdin.readline(); print(\'{"start": 13}\\n{"done": 13}\\n{"start": 12}\', flush=True)')
    clips = synthesize_all(LONG_BATCH, SpeechSettings())
    assert sorted(engine_calls) == sorted(LONG_BATCH)  # what was not in the cache was spoken here
    assert list(clips) == LONG_BATCH and all(clip.size for clip in clips.values())


def test_a_helper_that_cannot_start_is_made_up_for(cold_cache, engine_calls, helper_for_small_batches, monkeypatch):
    monkeypatch.setattr(scheduler, "HELPER_COMMAND", [str(cold_cache / "no-such-python")])
    synthesize_all(LONG_BATCH, SpeechSettings())
    assert sorted(engine_calls) == sorted(LONG_BATCH)


def test_a_helper_error_is_made_up_for(cold_cache, engine_calls, helper_for_small_batches, monkeypatch):
    fake_helper(monkeypatch, 'import json; print(json.dumps({"error": "espeak-ng failed to speak \\"count 13.\\""}))')
    clips = synthesize_all(LONG_BATCH, SpeechSettings())
    assert sorted(engine_calls) == sorted(LONG_BATCH)
    assert list(clips) == LONG_BATCH


def test_a_silent_helper_does_not_hold_up_the_batch(cold_cache, engine_calls, helper_for_small_batches,
                                                     helpers, monkeypatch):
    # It reads until its stdin is closed and never reports: this process speaks every text
    # and, done, tells it to stop instead of waiting for it (waiting would hang here).
    fake_helper(monkeypatch, "import sys; sys.stdin.read()")
    synthesize_all(LONG_BATCH, SpeechSettings())
    assert engine_calls == LONG_BATCH
    assert len(helpers) == 1 and helpers[0].process.wait(timeout=30) == 0


def test_an_error_here_stops_the_helper_before_returning(cold_cache, helper_for_small_batches, helpers, monkeypatch):
    fake_helper(monkeypatch, "import sys, time; sys.stdin.readline(); time.sleep(60)")
    engine = speech.get_engine("espeak")
    real_render = engine.render
    calls = []

    def render(*args):
        calls.append(args)
        if len(calls) == 3:
            raise SpeechError("espeak-ng failed")
        return real_render(*args)

    monkeypatch.setattr(engine, "render", render)
    with pytest.raises(SpeechError):
        synthesize_all(LONG_BATCH, SpeechSettings())
    assert len(helpers) == 1 and helpers[0].process.poll() is not None  # stopped, and waited for


def test_a_pyttsx3_driver_of_another_shape_is_one_clear_error():
    from pyttsx3.drivers import _espeak
    from pyttsx3.drivers import espeak as driver_module

    from coach.speech import espeak

    class OtherDriver:  # a pyttsx3 whose callback takes other arguments
        def _onSynth(self, wav, numsamples, events, user_data): ...

        _start_synthesis = startLoop = endLoop = iterate = say = _onSynth

    module = types.SimpleNamespace(EspeakDriver=OtherDriver, buildDriver=lambda proxy: OtherDriver())
    with pytest.raises(SpeechError, match=r"pyttsx3 .* not a version coach can drive .* pip install 'pyttsx3==") as caught:
        espeak._memory_driver_type(module, _espeak)
    assert "\n" not in str(caught.value)
    assert issubclass(espeak._memory_driver_type(driver_module, _espeak), driver_module.EspeakDriver)


@pytest.mark.parametrize("distribution", ["pyttsx3", "numpy", "typer", "tomli-w", "tomli_w", "TOMLI.W"])
def test_package_versions_are_those_importlib_metadata_gives(distribution):
    from importlib import metadata

    from coach.speech.packages import package_version

    assert package_version(distribution) == metadata.version(distribution)


def test_an_uninstalled_package_has_an_unknown_version():
    from coach.speech.packages import package_version

    assert package_version("no-such-package-anywhere") == "unknown"


def test_a_live_session_imports_neither_importlib_metadata_nor_the_export_thread_pool():
    # About 15 ms of imports on the way to a live session's first sound, for nothing there.
    script = ("import sys, coach.cli, coach.live, coach.session, coach.speech.registry; "
              "print('importlib.metadata' in sys.modules, 'concurrent.futures' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False"]
