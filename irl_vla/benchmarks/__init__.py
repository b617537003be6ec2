"""Benchmark suites behind ``irl-vla bench <suite>``; each yields JSON-serialisable records."""
