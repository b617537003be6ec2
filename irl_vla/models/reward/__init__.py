"""The reward world model (stage 2 of IRL-VLA): simulator sub-scores predicted for candidate trajectories."""
