"""Offline dataset tools: annotation converters, pinned split files, class descriptions, flatten, check, summary."""
