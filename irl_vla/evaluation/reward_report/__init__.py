"""``irl-vla report``: the learned reward against the simulator on held-out scenes (metrics, figures, HTML, JSON)."""
