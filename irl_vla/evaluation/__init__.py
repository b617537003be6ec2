"""Evaluation: agents, open-loop (NAVSIM-style) scoring of splits, reports."""
