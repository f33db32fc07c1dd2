"""`ivm_ros_sim`: simulation for ivm_ros, one subpackage per concern (calvin, ros, data, train, eval)."""
