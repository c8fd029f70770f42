"""The words coach adds around a routine's own texts in what people read (the Markdown
script, the session page, the chapter names), in the routine's language.

A routine in German gets German headings and labels; a language without its own words here
gets English ones, and a language with only some (the chapter names) gets English for the
rest. The plain-text script (txt), the captions and the JSON timeline carry no such words,
or keep them in English as fixed markers that programs may read.
"""

from __future__ import annotations

ENGLISH = {
    "introduction": "Introduction",
    "closing": "Closing",
    "change_sides": "Change sides",
    "stretches": "Stretches",
    "props": "Props",
    "length": "Length",
    "speed": "speed",
    "default_voice": "default voice",
    "hold": "Hold",
    "rest": "Rest",
    "from_to": "{start} to {end}",
    "chime_at": "chime at {at}",
    "chimes_at": "chime at {start} and at {end}",
    "no_chimes": "no chimes",
    "halfway": "halfway chime at {at}",
    "release": "Release",
    "chime": "chime",
    "hold_start": "hold start",
    "midpoint": "midpoint",
    "side_switch": "side switch",
    "rest_start": "rest start",
    "rest_end": "rest end",
    # the session page's controls, for screen readers
    "play": "Play",
    "pause": "Pause",
    "previous": "Previous pose",
    "next": "Next pose",
    "position": "Position",
    "poses": "Poses",
    "about": "About this session",
}

_LANGUAGES = {
    "en": ENGLISH,
    "de": {
        "introduction": "Einleitung",
        "closing": "Ausklang",
        "change_sides": "Seitenwechsel",
        "stretches": "Zielbereich",
        "props": "Hilfsmittel",
        "length": "Dauer",
        "speed": "Tempo",
        "default_voice": "Standardstimme",
        "hold": "Halten",
        "rest": "Pause",
        "from_to": "{start} bis {end}",
        "chime_at": "Gong bei {at}",
        "chimes_at": "Gong bei {start} und bei {end}",
        "no_chimes": "ohne Gong",
        "halfway": "Ton zur Hälfte bei {at}",
        "release": "Lösen",
        "chime": "Ton",
        "hold_start": "Beginn des Haltens",
        "midpoint": "Hälfte",
        "side_switch": "Seitenwechsel",
        "rest_start": "Beginn der Pause",
        "rest_end": "Ende der Pause",
        "play": "Abspielen",
        "pause": "Anhalten",
        "previous": "Vorige Übung",
        "next": "Nächste Übung",
        "position": "Position",
        "poses": "Übungen",
        "about": "Über diese Einheit",
    },
    "fr": {"introduction": "Introduction", "closing": "Conclusion"},
    "es": {"introduction": "Introducción", "closing": "Cierre"},
    "it": {"introduction": "Introduzione", "closing": "Chiusura"},
    "nl": {"introduction": "Inleiding", "closing": "Afsluiting"},
}


def wording(language: str | None) -> dict[str, str]:
    """Every word in ENGLISH, in `language` ("de", "de-AT", None) where it has its own."""
    own = _LANGUAGES.get((language or "").split("-")[0].lower(), {})
    return {**ENGLISH, **own}
