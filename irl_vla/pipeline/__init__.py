"""``irl-vla pipeline``: every stage of IRL-VLA chained, each step skipped when its done-marker is still valid."""
