"""Scene model, map model and SE(2) utilities."""
