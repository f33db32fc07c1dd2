"""The ``ivm-ros`` command and its subcommands and benchmarks: the top floor of the house.

Modules here may import anything in ivm_ros (library, pipeline, ROS nodes); nothing in ivm_ros imports them.
``cli`` is the dispatcher; one module per command (``demo``, ``mask``, ``predictors``, ``ivm_convert``) and one
per benchmark under ``bench/``.
"""
