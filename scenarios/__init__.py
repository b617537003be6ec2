"""Scenario definitions (yaml data) and the registry that turns them into worlds."""
