"""Sensors of the embedded world, rendered from a logged frame: a pinhole camera rig and a ray-cast LiDAR."""
