"""Thin command-line entry points over importable code (``irl-vla <command>``)."""
