"""The closed-loop interface: the simulator ``Protocol``, info keys, infractions, routes, the viewer's view.

Backends (the embedded world, the CARLA bridge) implement ``ClosedLoopEnv``; the closed-loop runner
(``irl_vla.evaluation.closed_loop``), the viewer (``irl_vla.viz``) and the driving-score metrics read only what
is defined here, so they never know which backend they drive.
"""
