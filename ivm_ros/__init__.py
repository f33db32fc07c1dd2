"""ivm_ros: Instruction-guided Visual Masking between a robot camera and its visuomotor policy."""

__version__ = "0.1.0"
