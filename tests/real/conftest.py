"""Fixtures of the real-robot tests (helpers in real_server.py)."""

from pathlib import Path

import pytest
from real_server import write_station


@pytest.fixture(scope="module")
def station_file(tmp_path_factory) -> Path:
    return write_station(tmp_path_factory.mktemp("station") / "station.yaml")
