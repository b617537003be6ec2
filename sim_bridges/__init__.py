"""Bridges from the suite to simulators: the embedded world, NAVSIM data and tooling, CARLA."""
