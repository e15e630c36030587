"""ezclip: an experiment framework for EZ-CLIP (efficient zero-shot video action recognition)."""

__version__ = "0.1.0"
