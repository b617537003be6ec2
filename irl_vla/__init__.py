"""IRL-VLA: imitation, reward world model and PPO for autonomous-driving VLA policies."""

__version__ = "0.1.0"
