"""Camera -> masking_node (-> policy_node with policy:=true), optionally fed by the simulator bridge.

    ros2 launch ivm_ros manipulation.launch.py camera_topic:=/camera/color/image_raw \
        instruction_topic:=/instruction params_file:=/path/to/my_params.yaml use_sim_time:=false
    ros2 launch ivm_ros manipulation.launch.py sim:=true    # CALVIN scene D: sim_node's camera, /clock, task
    ros2 launch ivm_ros manipulation.launch.py sim:=true policy:=true   # + policy_node -> the sim's `action`
    ros2 launch ivm_ros manipulation.launch.py viewer:=web      # + a live view on http://127.0.0.1:8080/
    ros2 launch ivm_ros manipulation.launch.py viewer:=foxglove # + a Foxglove WebSocket on ws://127.0.0.1:8765
    ros2 launch ivm_ros manipulation.launch.py cameras:="[/cam_front/image_raw,/wrist/image_raw]" \
        camera_params:="[{}, {model: keep_all}]"   # one masking_node per camera (/cam_front/masking_node ...)
"""

import os

from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EqualsSubstitution, LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from ivm_ros.cameras import plain_section, plan_cameras, resolve
from ivm_ros.paths import profile_variables
from launch import LaunchContext, LaunchDescription


def _cameras_and_viewer(context: LaunchContext) -> list[Node]:
    """With `cameras`: one namespaced masking_node per camera (ivm_ros/cameras.py), all on one instruction topic;
    and viewer_node (viewer:=web|foxglove) on the first camera, or on camera_topic without `cameras`."""
    value = lambda name: LaunchConfiguration(name).perform(context)
    cameras = plan_cameras(value("cameras"), value("camera_params"), value("namespace"), value("instruction_topic"))
    flags = {"use_sim_time": value("use_sim_time").lower() == "true",
             "exit_on_failure": value("exit_on_failure") == "true"}
    nodes = [
        Node(package="ivm_ros", executable="masking_node", name="masking_node", namespace=camera.namespace,
             parameters=[plain_section(value("params_file")), value("params_file"), flags, *camera.parameters],
             remappings=camera.remappings, output="screen")
        for camera in cameras
    ]
    if value("viewer") != "none":
        if cameras:
            remappings = cameras[0].viewer_remappings
        else:  # the single masking node (with sim:=true it reads the simulator's camera)
            camera = "camera/image_raw" if value("sim") == "true" else value("camera_topic")
            remappings = [("image_raw", camera), ("image_raw/compressed", f"{camera}/compressed"),
                          ("instruction", value("instruction_topic"))]
            remappings = [(a, resolve(b, value("namespace"))) for a, b in remappings]
        nodes.append(Node(
            package="ivm_ros", executable="viewer_node", name="viewer_node", namespace=value("namespace"),
            parameters=[{"viewer": value("viewer"), "host": value("viewer_host"), "web_port": int(value("web_port")),
                         "foxglove_port": int(value("foxglove_port"))}],
            remappings=remappings, output="screen"))
    return nodes


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
            "policy",
            default_value="false",
            choices=["true", "false"],
            description="start policy_node on the masked image (actions to the simulator's `action` with sim:=true)",
        ),
        DeclareLaunchArgument(
            "policy_image_topic",
            default_value="masking_node/masked_image",
            description="policy_node's image: the masked one, or the raw camera for an unmasked baseline",
        ),
        DeclareLaunchArgument(
            "wrist_camera_topic",
            default_value="/wrist_camera/image_raw",
            description="policy_node's wrist image (use_wrist_image; sim:=true uses the simulator's gripper camera)",
        ),
        DeclareLaunchArgument(
            "policy_params_file",
            default_value=PathJoinSubstitution([share, "config", "policy_node.yaml"]),
            description="policy_node parameters (with policy:=true)",
        ),
        DeclareLaunchArgument(
            "fastdds_profile",
            default_value=PathJoinSubstitution([share, "config", "fastdds.xml"]),
            description="Fast DDS profile (16 MB shared memory for camera frames); 'keep' (or empty) keeps the "
            "environment's profile (FASTDDS_/FASTRTPS_DEFAULT_PROFILES_FILE). A camera driver started elsewhere needs "
            "the same profile",
        ),
        DeclareLaunchArgument(
            "cameras",
            default_value="",
            description="several cameras, one instruction: a list of Image topics, e.g. "
            "[/cam_front/image_raw,/wrist/image_raw]; each gets its own masking_node in a namespace named after the "
            "topic (/cam_front/masking_node ...) instead of the one on camera_topic",
        ),
        DeclareLaunchArgument(
            "camera_params",
            default_value="",
            description="with cameras: a list of the same order whose items are parameter dicts or params files "
            "applied on top of params_file for that camera, e.g. [{}, {model: keep_all}] (wrist unmasked) or "
            "[{}, {predictor_rate: 2.0}]",
        ),
        DeclareLaunchArgument(
            "viewer",
            default_value="none",
            choices=["none", "web", "foxglove"],
            description="start viewer_node: a live view of camera | mask | masked image, the instruction and "
            "/diagnostics as a web page ('web', with a box that publishes instructions) or a Foxglove WebSocket",
        ),
        DeclareLaunchArgument("viewer_host", default_value="127.0.0.1",
                              description="address the viewer binds ('0.0.0.0': every interface)"),
        DeclareLaunchArgument("web_port", default_value="8080", description="viewer:=web HTTP port"),
        DeclareLaunchArgument("foxglove_port", default_value="8765", description="viewer:=foxglove WebSocket port"),
        DeclareLaunchArgument(
            "exit_on_failure",
            default_value="false",
            choices=["true", "false"],
            description="a node whose model or policy cannot load exits with status 1 (respawn / supervisors) "
            "instead of staying up unconfigured with an ERROR on /diagnostics",
        ),
    ]
    # Fast DDS 2 (Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE, Fast DDS 3 (Kilted) FASTDDS_DEFAULT_PROFILES_FILE
    fastdds = [
        SetEnvironmentVariable(
            name,
            LaunchConfiguration("fastdds_profile"),
            condition=IfCondition(
                PythonExpression(["'", LaunchConfiguration("fastdds_profile"), "' not in ('', 'keep')"])
            ),
        )
        for name in profile_variables(os.environ)
    ]
    sim = LaunchConfiguration("sim")
    exit_on_failure = PythonExpression(["'", LaunchConfiguration("exit_on_failure"), "' == 'true'"])
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
        parameters=[LaunchConfiguration("params_file"),
                    {"use_sim_time": LaunchConfiguration("use_sim_time"), "exit_on_failure": exit_on_failure}],
        remappings=[
            ("image_raw", image_topic),
            ("image_raw/compressed", [image_topic, "/compressed"]),
            ("instruction", LaunchConfiguration("instruction_topic")),
        ],
        output="screen",
        condition=IfCondition(EqualsSubstitution(LaunchConfiguration("cameras"), "")),
    )
    # With sim:=true the policy drives the simulator's `action` input; otherwise its outputs keep their
    # private names (~/action, ~/delta_twist_cmds, ~/gripper_cmd) for the robot stack to remap.
    action_topic = PythonExpression(["'action' if '", sim, "' == 'true' else 'policy_node/action'"])
    wrist_topic = PythonExpression(
        ["'gripper_camera/image_raw' if '", sim, "' == 'true' else '", LaunchConfiguration("wrist_camera_topic"), "'"]
    )
    policy = Node(
        package="ivm_ros",
        executable="policy_node",
        name="policy_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[
            LaunchConfiguration("policy_params_file"),
            # actuation starts enabled only in simulation; a real robot waits for ~/enable
            {"use_sim_time": LaunchConfiguration("use_sim_time"),
             "start_enabled": PythonExpression(["'", sim, "' == 'true'"]), "exit_on_failure": exit_on_failure},
        ],
        remappings=[
            ("image", LaunchConfiguration("policy_image_topic")),
            ("wrist_image", wrist_topic),
            ("proprio", PythonExpression(["'sim_node/robot_obs' if '", sim, "' == 'true' else 'proprio'"])),
            ("instruction", LaunchConfiguration("instruction_topic")),
            ("~/action", action_topic),
        ],
        output="screen",
        condition=IfCondition(LaunchConfiguration("policy")),
    )
    cameras_and_viewer = OpaqueFunction(function=_cameras_and_viewer)  # evaluates the `cameras` list at launch time
    return LaunchDescription([*args, *fastdds, simulator, masking, policy, cameras_and_viewer])
