"""The simulator itself: CALVIN scene D in PyBullet (scene, env, tasks, expert, distractors, masks); no ROS."""
