"""Evaluations in the simulator: the closed loop over ROS (`sim-eval-policy`)."""
