"""The sim <-> ROS bridge: sim_node and the ROS-free command, lockstep and episode logic it wires up."""
