"""NAVSIM bridge: OpenScene logs and nuPlan maps read and written, the navsim agent adapter, submissions."""
