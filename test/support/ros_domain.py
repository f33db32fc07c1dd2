"""A ROS domain id per test run that no other run on this machine holds at the same time.

Two test runs in one domain see each other's nodes and topics (every test names the same ``image_raw``,
``instruction``...), so a run's tests can receive another run's frames. Fast DDS separates domains by port
(discovery on 7400 + 250 * id, unicast from 7410 + 250 * id), so a domain no other run uses is an isolated
graph; ``ROS_AUTOMATIC_DISCOVERY_RANGE`` cannot do this (LOCALHOST still reaches every process on the machine,
OFF also cuts a run's own processes apart).

What guarantees it: a run takes an exclusive ``flock`` on ``<lock dir>/domain_<id>.lock`` and keeps the file open
for its whole life; the kernel drops the lock when the process ends, however it ends (kill -9 included), so a
crashed run never leaks a domain. Runs using this module therefore never share a domain while both are alive.
Before taking an id it also checks that nobody else (a manual ``ros2 run``, a run of an older checkout) has a
DDS participant in that domain: it tries to bind the domain's discovery ports, which any Fast DDS participant
holds (unicast 7410 + 250 * id + 2 * n for its n-th participant; multicast 7400 + 250 * id outside LOCALHOST
mode).
That second check is a snapshot, not a guarantee: a program that does not use this module may still join later.

Child processes (node processes a test starts) inherit ``ROS_DOMAIN_ID`` through the environment. Only this
standard library is imported here: conftest.py calls it before anything imports rclpy.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import tempfile
from pathlib import Path

#: Ids handed out. 0 is every ROS user's default; above 101 Fast DDS's ports reach Linux's ephemeral port range
#: (32768-60999), where the kernel may already have given them to other sockets (ROS 2's domain id guide);
#: 150-209 are ``ivm-ros bench node``'s.
FIRST, LAST = 1, 101
#: Shared by every run on this machine whatever its TMPDIR.
LOCK_DIR = Path(os.environ.get("IVM_ROS_DOMAIN_LOCK_DIR", "/tmp/ivm_ros_ros_domains"))

_held: dict[int, int] = {}  # domain id -> open lock file descriptor, kept for the life of the process


def discovery_ports(domain: int, participants: int = 5) -> list[int]:
    """The multicast discovery port and the unicast discovery ports of the domain's first ``participants``
    participants, per the RTPS well-known port formula Fast DDS uses (PB 7400, DG 250, PG 2, d0 0, d1 10)."""
    return [7400 + 250 * domain] + [7410 + 250 * domain + 2 * i for i in range(participants)]


def domain_in_use(domain: int) -> bool:
    """True if a DDS participant of this domain holds one of its discovery ports on this machine."""
    for port in discovery_ports(domain):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
                raise
    return False


def _lock_dir() -> Path:
    try:
        LOCK_DIR.mkdir(mode=0o1777, parents=True, exist_ok=True)
        try:
            os.chmod(LOCK_DIR, 0o1777)  # every user's runs share it, like /tmp (umask trimmed mkdir's mode)
        except PermissionError:  # made by another user, who opened it up already
            pass
        if os.access(LOCK_DIR, os.W_OK | os.X_OK):
            return LOCK_DIR
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / "ivm_ros_ros_domains"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def _try_lock(folder: Path, domain: int) -> int | None:
    path = folder / f"domain_{domain}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's lock file: flock works on a read-only descriptor too
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def claim_domain(exclude: set[int] | None = None, start: int | None = None) -> int:
    """Takes a domain id in [FIRST, LAST] that no other live process holds (see the module docstring) and keeps
    it until this process ends. Probes from ``start`` (default: from ``pid % span``, so concurrent runs seldom
    even probe the same id)."""
    avoid = set(exclude or ())
    folder = _lock_dir()
    span = LAST - FIRST + 1
    start = os.getpid() % span if start is None else (start - FIRST) % span
    for i in range(span):
        domain = FIRST + (start + i) % span
        if domain in avoid or domain in _held:
            continue
        fd = _try_lock(folder, domain)
        if fd is None:
            continue
        if domain_in_use(domain):
            os.close(fd)  # someone outside this scheme is there: leave it to them
            continue
        _held[domain] = fd
        return domain
    raise RuntimeError(f"no free ROS domain id in {FIRST}..{LAST}: every one is locked in {folder} or in use")


def holds(domain: int) -> bool:
    """True if this process holds the lock of ``domain``."""
    return domain in _held


def release(domain: int) -> None:
    """Gives a claimed domain back early (tests of this module; a run keeps its domain until it ends)."""
    fd = _held.pop(domain, None)
    if fd is not None:
        os.close(fd)
