"""Evaluation: running agents on splits, open-loop (NAVSIM-style) scoring, reports."""
