"""The CARLA bridge: a synchronous client, coordinates, sensors, leaderboard routes, infractions and the env.

Needs the ``carla`` client (``pip install 'irl-vla[carla]'``, pinned to the server's 0.9.16). Modules import
``carla`` only where they talk to it, so the value-free parts (coordinates, route XML) work without it.
"""
