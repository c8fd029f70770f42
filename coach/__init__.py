"""coach: a voice-guided audio coach for stretching and yoga."""

__version__ = "0.1.0"
