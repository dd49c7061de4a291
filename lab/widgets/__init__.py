"""Textual widgets of the lab, one per file."""
