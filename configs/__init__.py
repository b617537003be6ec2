"""Hydra configs of the suite (a package so that ``pkg://configs`` resolves in installed copies)."""
