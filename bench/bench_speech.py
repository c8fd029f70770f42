"""How fast coach turns text into speech, cold and warm, against `espeak-ng -w` in one process.

Run: .venv/bin/python bench/bench_speech.py [--runs N]

For a routine-sized set (40 distinct cues) and a 60-minute session's worth of cues it
prints: cold synthesis time (empty cache) and its speed as a multiple of real time,
warm time (everything from the cache), and the time `espeak-ng -w` takes for the same
text in one process, with the ratio. Each figure is the best of --runs runs. Then where
the time of a cold synthesis goes, stage by stage, in CPU seconds (--stages: only that).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coach.audio import SAMPLE_RATE  # noqa: E402
from coach.speech import ESPEAK_NORMAL_WPM, SpeechSettings, get_engine, synthesize_all  # noqa: E402

_PARTS = {
    "start": ["Slowly", "Gently", "Now", "When you are ready,", "On your next breath,", "Without forcing,"],
    "verb": ["lift", "lower", "draw", "ease", "rest", "turn", "press", "soften", "lengthen", "release"],
    "what": ["your right leg", "your left leg", "the strap", "both shoulders", "your heel", "the back of your knee",
             "your hips", "your jaw", "the sole of your foot", "your lower back"],
    "how": ["toward the ceiling", "a little to the side", "across your body", "down to the mat", "away from you",
            "back to the middle", "as far as is comfortable", "into the floor"],
    "then": ["and breathe out slowly.", "and let the breath stay easy.", "and notice the stretch.",
             "keeping the knee soft.", "and stay here.", "and let everything else relax."],
}


def cue_sentences(count: int, seed: int = 7) -> list[str]:
    """`count` distinct, deterministic cue-like sentences."""
    rng = random.Random(seed)
    texts: dict[str, None] = {}
    while len(texts) < count:
        words = [rng.choice(_PARTS[part]) for part in ("start", "verb", "what", "how", "then")]
        texts[" ".join(words)] = None
    return list(texts)


def session_sentences(minutes: float = 60.0, speech_share: float = 0.35) -> list[str]:
    """Cues for a session of `minutes` in which about `speech_share` of the time is speech."""
    words_needed = minutes * speech_share * ESPEAK_NORMAL_WPM
    count = 10
    while sum(len(t.split()) for t in cue_sentences(count)) < words_needed:
        count += 10
    return cue_sentences(count)


def best_of(runs: int, work) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def measure(label: str, texts: list[str], runs: int) -> None:
    settings = SpeechSettings()
    cache = Path(tempfile.mkdtemp(prefix="coach-bench-cache-"))
    os.environ["COACH_CACHE_DIR"] = str(cache)
    audio_seconds = 0.0

    def cold() -> None:
        nonlocal audio_seconds
        shutil.rmtree(cache, ignore_errors=True)
        clips = synthesize_all(texts, settings)
        audio_seconds = sum(len(c) for c in clips.values()) / SAMPLE_RATE

    cold_s = best_of(runs, cold)
    warm_s = best_of(runs, lambda: synthesize_all(texts, settings))
    baseline_s = best_of(runs, lambda: espeak_one_process(texts))
    shutil.rmtree(cache, ignore_errors=True)

    print(f"{label}: {len(texts)} distinct utterances, {audio_seconds:.1f} s of speech after trimming")
    print(f"  cold (empty cache)      {cold_s * 1000:8.1f} ms   {audio_seconds / cold_s:7.0f}x real time")
    print(f"  warm (all from cache)   {warm_s * 1000:8.1f} ms")
    print(f"  espeak-ng -w, 1 process {baseline_s * 1000:8.1f} ms   cold / espeak-ng = {cold_s / baseline_s:.2f}")


def espeak_one_process(texts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "script.txt")
        script.write_text("\n".join(texts) + "\n", encoding="utf-8")
        voice = get_engine().default_voice
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(ESPEAK_NORMAL_WPM), "-w", str(Path(tmp, "all.wav")), "-f", str(script)],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def where_the_time_goes(texts: list[str], runs: int) -> None:
    """CPU seconds of each stage of a cold synthesis in one process (the best of `runs`),
    and of the imports a coach command and the helper process need before they can start.
    CPU time, not wall time: it says what each stage costs even on a shared machine. The
    engine renders every text first; each later stage then runs over all of them at once,
    so a stage of a few milliseconds per text is not lost in espeak's noise."""
    from coach.dsp import polish_speech_from
    from coach.speech.cache import SpeechCache
    from coach.speech.clip import to_int16
    from coach.speech.clip import place_words

    engine = get_engine()

    def timed(work) -> tuple[float, object]:
        best, result = float("inf"), None
        for _ in range(runs):
            start = time.process_time()
            result = work()
            best = min(best, time.process_time() - start)
        return best, result

    figures = {}
    figures["render (espeak-ng, pyttsx3)"], raws = timed(lambda: [engine.render(t, None, 1.0) for t in texts])
    figures["trim, level, fade"], polished = timed(lambda: [polish_speech_from(raw.samples) for raw in raws])
    figures["to 16 bits"], pcms = timed(lambda: [to_int16(clip) for clip, _ in polished])
    figures["word times"], words = timed(lambda: [
        place_words(text, [(o, max(s - cut, 0)) for o, s in raw.marks], len(clip), sound=clip)
        for text, raw, (clip, cut) in zip(texts, raws, polished)])
    with tempfile.TemporaryDirectory() as tmp:
        def write_all() -> None:
            cache = SpeechCache(Path(tmp) / str(time.monotonic_ns()))
            for i, (pcm, said) in enumerate(zip(pcms, words)):
                cache.put(str(i), pcm, said)
        figures["cache write"], _ = timed(write_all)
        cache = SpeechCache(Path(tmp) / "read")
        for i, (pcm, said) in enumerate(zip(pcms, words)):
            cache.put(str(i), pcm, said)
        figures["cache read (warm run)"], _ = timed(lambda: [cache.get(str(i)) for i in range(len(texts))])
    print(f"where the time goes, {len(texts)} texts in one process (CPU seconds, best of {runs}):")
    for stage, cpu in figures.items():
        print(f"  {stage:28} {cpu:6.3f} s")
    for label, modules in (("imports: coach export", "coach.cli, coach.session, coach.export, coach.mixer"),
                           ("imports: speech helper", "coach.speech.helper")):
        cpu = min(_child_cpu([sys.executable, "-c", f"import {modules}"]) for _ in range(runs))
        print(f"  {label:28} {cpu:6.3f} s (a new interpreter)")


def _child_cpu(command: list[str]) -> float:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, cwd=Path(__file__).resolve().parent.parent)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="take the best of this many runs (default 3)")
    parser.add_argument("--stages", action="store_true", help="only where the time of a cold synthesis goes")
    args = parser.parse_args()
    if not shutil.which("espeak-ng"):
        sys.exit("bench_speech: the espeak-ng command is needed for the baseline (sudo apt-get install espeak-ng)")

    start = time.perf_counter()
    engine = get_engine()
    print(f"engine: {engine.version}; started in {(time.perf_counter() - start) * 1000:.0f} ms")
    if not args.stages:
        measure("routine", cue_sentences(40), args.runs)
        measure("60-minute session", session_sentences(60), args.runs)
    where_the_time_goes(session_sentences(60), args.runs)


if __name__ == "__main__":
    main()
