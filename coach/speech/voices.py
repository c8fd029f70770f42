"""Finding a voice by id, name or language, across the installed engines."""

from __future__ import annotations

from coach.errors import SpeechError
from coach.speech.engine import DEFAULT_ENGINE, Voice, match_voice
from coach.speech.registry import engine_names, get_engine


def list_voices(engine: str = DEFAULT_ENGINE) -> list[Voice]:
    return get_engine(engine).voices()


def list_all_voices() -> tuple[list[Voice], dict[str, str]]:
    """The voices of every engine that starts, and for each one that does not, why (one line)."""
    voices: list[Voice] = []
    unavailable: dict[str, str] = {}
    for name in engine_names():
        try:
            voices.extend(list_voices(name))
        except SpeechError as err:
            unavailable[name] = str(err)
    return voices, unavailable


def resolve_voice(name_or_id: str | None, engine: str = DEFAULT_ENGINE) -> str | None:
    """A voice id from an id, a name or a language ("gmw/en-us", "English (America)", "en-us").

    Exact id or name wins; then a case-insensitive match on id, the id's last part,
    name or language. None stays None (the engine's default voice).
    """
    if name_or_id is None:
        return None
    return match_voice(name_or_id, list_voices(engine), engine)


def voice_for_language(language: str, engine: str = DEFAULT_ENGINE, prefer: str | None = None) -> str:
    """The id of a voice that speaks `language` ("de", "fr", "en-gb"): `prefer` (a voice id,
    name or language) when it does; else an exact language match, then a voice named after
    the language ("roa/fr"), then any voice of that language ("fr-be" for "fr").
    SpeechError naming the languages the engine has when none speaks it."""
    voices = list_voices(engine)
    wanted = language.casefold()
    base = wanted.split("-")[0]

    def speaks(v: Voice, exact: bool) -> bool:
        langs = {lang.casefold() for lang in v.languages}
        return wanted in langs if exact else any(lang.split("-")[0] == base for lang in langs)

    if prefer is not None:
        try:
            preferred = next((v for v in voices if v.id == resolve_voice(prefer, engine)), None)
        except SpeechError:
            preferred = None
        if preferred is not None and speaks(preferred, exact="-" in wanted):
            return preferred.id
    for match in (lambda v: speaks(v, True), lambda v: v.id.rsplit("/", 1)[-1].casefold() == wanted,
                  lambda v: speaks(v, False)):
        found = next((v for v in voices if match(v)), None)
        if found is not None:
            return found.id
    have = sorted({lang.split("-")[0] for v in voices for lang in v.languages})
    raise SpeechError(f"the {engine} engine has no voice for this language; it has voices for "
                      f"{', '.join(have) or 'no language'} (set language to one of these, or "
                      "try another --engine)")
