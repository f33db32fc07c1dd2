"""The only part of ivm_ros that imports rclpy: message conversions, QoS, diagnostics and the nodes."""
