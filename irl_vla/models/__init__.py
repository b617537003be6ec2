"""Learned models: the VLA policy (``vla``) and, later, the reward world model."""
