"""The VLA policy: vision, 3D reasoning, semantic reasoning (a causal LM) and an anchored diffusion planner.

One concept a module: ``config`` (sizes and input keys), ``vision``, ``reasoning3d``, ``language``,
``tokenizer``, ``anchors``, ``normalization``, ``planner``, ``model`` (``VLAModel``), ``loss``, ``layers``
(attention blocks), ``synthetic`` (well-formed random batches), ``summary`` (parameter counts). Import from the
modules; this package imports nothing heavy on its own. See ``docs/models.md``.
"""
