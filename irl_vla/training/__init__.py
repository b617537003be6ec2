"""Training: the shared trainer, stage 1 (imitation), the trained policy and the validation hook.

The shared trainer (``trainer``, DDP under torchrun), stage 1 imitation (``il``), the trained
policy and its checkpoints (``policy``), the VLA's language targets (``language_targets``) and the validation
hook (``validation``). Import from the modules.
"""
