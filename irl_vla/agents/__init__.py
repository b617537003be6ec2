"""Driving agents: the interface every policy implements, the baselines and the registry that builds them.

An "agent" is a driving policy only (the embedded world's other traffic participants are road users).
"""
