"""Sample positions as the times people and file formats read."""

from __future__ import annotations

from coach.audio import SAMPLE_RATE


def clock(sample: int) -> str:
    """mm:ss, rounded down to the second; minutes go past 59 in a long session."""
    seconds = sample // SAMPLE_RATE
    return f"{seconds // 60:02d}:{seconds % 60:02d}"



def milliseconds(sample: int) -> int:
    """A sample position in whole milliseconds, rounded to nearest (exact integer arithmetic)."""
    return (sample * 1000 + SAMPLE_RATE // 2) // SAMPLE_RATE



def seconds(samples: int) -> float:
    """Seconds as a float rounded to 6 places (the JSON's convenience copy of a sample count)."""
    return round(samples / SAMPLE_RATE, 6)
