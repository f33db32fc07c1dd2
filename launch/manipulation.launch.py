"""Camera -> masking_node, optionally fed by the simulator bridge (-> policy nodes as they are added).

    ros2 launch ivm_ros manipulation.launch.py camera_topic:=/camera/color/image_raw \
        instruction_topic:=/instruction params_file:=/path/to/my_params.yaml use_sim_time:=false
    ros2 launch ivm_ros manipulation.launch.py sim:=true    # CALVIN scene D: sim_node's camera, /clock, task
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("ivm_ros")
    args = [
        DeclareLaunchArgument("camera_topic", default_value="/camera/image_raw", description="input sensor_msgs/Image"),
        DeclareLaunchArgument("instruction_topic", default_value="/instruction", description="std_msgs/String command"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace for the nodes"),
        DeclareLaunchArgument(
            "sim",
            default_value="false",
            choices=["true", "false"],
            description="start sim_node (CALVIN scene D) and mask its static camera instead of camera_topic",
        ),
        DeclareLaunchArgument("use_sim_time", default_value=LaunchConfiguration("sim"), description="follow /clock"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, "config", "masking_node.yaml"]),
            description="masking_node parameters",
        ),
        DeclareLaunchArgument(
            "sim_params_file",
            default_value=PathJoinSubstitution([share, "config", "sim_node.yaml"]),
            description="sim_node parameters (with sim:=true)",
        ),
        DeclareLaunchArgument(
            "fastdds_profile",
            default_value=PathJoinSubstitution([share, "config", "fastdds.xml"]),
            description="Fast DDS profile (16 MB shared memory for camera frames); empty keeps the environment's",
        ),
    ]
    fastdds = SetEnvironmentVariable(
        "FASTDDS_DEFAULT_PROFILES_FILE",
        LaunchConfiguration("fastdds_profile"),
        condition=IfCondition(PythonExpression(["'", LaunchConfiguration("fastdds_profile"), "' != ''"])),
    )
    sim = LaunchConfiguration("sim")
    # With sim:=true the masking node reads the simulator's static camera (relative: same namespace).
    image_topic = PythonExpression(
        ["'camera/image_raw' if '", sim, "' == 'true' else '", LaunchConfiguration("camera_topic"), "'"]
    )
    simulator = Node(
        package="ivm_ros",
        executable="sim_node",
        name="sim_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("sim_params_file")],
        remappings=[("instruction", LaunchConfiguration("instruction_topic"))],  # the task's sentence
        output="screen",
        condition=IfCondition(sim),
    )
    masking = Node(
        package="ivm_ros",
        executable="masking_node",
        name="masking_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), {"use_sim_time": LaunchConfiguration("use_sim_time")}],
        remappings=[
            ("image_raw", image_topic),
            ("image_raw/compressed", [image_topic, "/compressed"]),
            ("instruction", LaunchConfiguration("instruction_topic")),
        ],
        output="screen",
    )
    return LaunchDescription([*args, fastdds, simulator, masking])
