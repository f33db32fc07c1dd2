"""Each test run gets a ROS domain no concurrent run has (support/ros_domain.py, claimed by conftest.py)."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys

import pytest
from support import TEST_ROOT
from support.ros_domain import FIRST, LAST, _lock_dir, claim_domain, discovery_ports, domain_in_use, holds, release

FORCED = bool(os.environ.get("IVM_ROS_TEST_DOMAIN"))


def _locked_elsewhere(domain: int) -> bool:
    """True if some open file description other than a new one holds the domain's lock."""
    fd = os.open(_lock_dir() / f"domain_{domain}.lock", os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.skipif(FORCED, reason="IVM_ROS_TEST_DOMAIN forces the domain (no lock)")
def test_this_run_holds_its_domain_for_its_whole_life():
    domain = int(os.environ["ROS_DOMAIN_ID"])
    assert FIRST <= domain <= LAST
    assert holds(domain) and _locked_elsewhere(domain)


def test_concurrent_claims_never_share_a_domain():
    """Six processes that all start probing at the same id, alive together, get six different ids, none this
    run's; their locks go when they end."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from support.ros_domain import claim_domain; "
            "print(claim_domain(start=int(sys.argv[2])), flush=True); sys.stdin.read()")
    start = FIRST + 7
    procs = [subprocess.Popen([sys.executable, "-c", code, str(TEST_ROOT), str(start)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    try:
        ids = [int(p.stdout.readline()) for p in procs]
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait(timeout=30)
    assert len(set(ids)) == len(ids), ids
    assert os.environ["ROS_DOMAIN_ID"] not in map(str, ids)
    assert all(FIRST <= d <= LAST for d in ids)
    assert not any(_locked_elsewhere(d) for d in ids), "a finished process kept its domain"


def test_a_domain_with_a_participant_is_skipped():
    """A socket on a domain's discovery port (as any DDS participant holds) makes the domain taken."""
    domain = claim_domain()
    try:
        assert not domain_in_use(domain)
        for port in discovery_ports(domain)[:2]:  # multicast (SUBNET participants), first unicast (LOCALHOST)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("0.0.0.0", port))
                assert domain_in_use(domain), port
        assert not domain_in_use(domain)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("0.0.0.0", discovery_ports(domain)[1]))
            release(domain)  # unlocked but in use: a claim starting there passes it by
            other = claim_domain(start=domain)
            release(other)
        assert other != domain
    finally:
        release(domain)


def test_a_ros_participant_holds_the_ports_the_check_reads():
    """The port formula is Fast DDS's: a node with the shipped profile and LOCALHOST discovery binds them."""
    domain = claim_domain()
    code = ("import rclpy, sys; rclpy.init(); n = rclpy.create_node('domain_probe'); print('up', flush=True); "
            "sys.stdin.read()")
    try:
        assert not domain_in_use(domain)
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "up"
            assert domain_in_use(domain)
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
    finally:
        release(domain)
