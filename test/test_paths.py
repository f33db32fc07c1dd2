"""The package's data files and the Fast DDS profile variable of each ROS distribution."""

from __future__ import annotations

import os

from ivm_ros import paths


def test_the_profile_variable_follows_the_fast_dds_version_of_the_distro():
    assert paths.profile_variables({"ROS_DISTRO": "jazzy"}) == ["FASTRTPS_DEFAULT_PROFILES_FILE"]  # Fast DDS 2
    assert paths.profile_variables({"ROS_DISTRO": "kilted"}) == ["FASTDDS_DEFAULT_PROFILES_FILE"]  # Fast DDS 3


def test_use_fastdds_profile_keeps_the_users_choice_and_otherwise_sets_the_shipped_one(monkeypatch):
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROS_DISTRO", "jazzy")
    paths.use_fastdds_profile()
    assert os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(paths.config_file("fastdds.xml"))
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ
    monkeypatch.setenv("FASTRTPS_DEFAULT_PROFILES_FILE", "/mine.xml")
    paths.use_fastdds_profile()
    assert os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] == "/mine.xml"
