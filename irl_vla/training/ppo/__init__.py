"""Stage 3: PPO on the planner's denoising chain against the learned reward (no simulator in the loop)."""
