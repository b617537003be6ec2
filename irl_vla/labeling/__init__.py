"""Labelled candidates for the reward world model: the label store and the ``irl-vla label`` pipeline."""
