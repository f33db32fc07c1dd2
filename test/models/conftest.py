"""Markers for model tests: ``gpu`` tests need CUDA and are skipped without it."""


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")
