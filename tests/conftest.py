"""Shared fixtures: small, fast, and independent of ../shared."""

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "numba"))


@pytest.fixture
def runs_dir(tmp_path):
    return str(tmp_path / "runs")
