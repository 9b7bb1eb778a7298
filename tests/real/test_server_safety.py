"""The server's safety behaviour on a real-time twin: the watchdog holds the pose, stop() aborts a blocking move,
one motion request at a time, and a contact reflex is reported and recovered. Plus `serl record-pose`."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from real_server import RESET, ServerProcess

from serl_envs.real.cli import main_record_pose
from serl_envs.real.client import RobotClient, RobotFaultError
from serl_envs.real.config import read_station_file

DOWN = [0.0, 1.0, 0.0, 0.0]
WATCHDOG = 0.2  # s
FORCE_LIMIT = 12.0  # N: resting on the board pushes ~15 N through the flange, free motion stays below 9 N


@pytest.fixture(scope="module")
def server(station_file):
    srv = ServerProcess("--station", str(station_file), "--speed", "1", "--watchdog", str(WATCHDOG),
                        "--force-limit", str(FORCE_LIMIT))
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    c = RobotClient(server.url, timeout=5.0)
    c.move_pose(RESET["position"], RESET["quat"])
    yield c
    c.clear_errors()
    c.close()


def y_after(client, seconds, feed):
    """Target y = 0.14 (10 cm away); feed it every 50 ms for `seconds`, or send it once."""
    end = time.monotonic() + seconds
    client.command([0.53, 0.14, 0.16], DOWN)
    while time.monotonic() < end:
        time.sleep(0.05)
        if feed:
            client.command([0.53, 0.14, 0.16], DOWN)
    return client.state()


def test_the_watchdog_holds_the_pose_when_commands_stop(client):
    fed = y_after(client, 2.0, feed=True)
    assert fed["cartesian_position"][1] > 0.135, fed  # streamed targets are tracked ...
    assert not fed["holding"]

    client.move_pose(RESET["position"], RESET["quat"])
    silent = y_after(client, 1.5, feed=False)
    y = silent["cartesian_position"][1]
    assert silent["holding"], silent
    assert y < 0.12, silent  # ... a target sent once is not: the arm stops well short of it
    np.testing.assert_allclose(silent["target_position"], silent["cartesian_position"][:3], atol=0.005)
    assert np.linalg.norm(silent["cartesian_velocity"][:3]) < 0.01  # and it stays there


def test_stop_aborts_a_blocking_move_and_motion_requests_do_not_overlap(server, client):
    outcome = {}

    def long_move():
        r = server.post("/move/pose", json={"position": [0.43, -0.06, 0.2], "orientation": DOWN})
        outcome["status"], outcome["detail"] = r.status_code, r.json().get("detail")

    mover = threading.Thread(target=long_move)
    mover.start()
    time.sleep(0.3)
    busy = server.post("/command", json={"position": [0.5, 0.0, 0.15], "orientation": DOWN})
    assert busy.status_code == 409 and busy.json()["detail"] == "a blocking move is running; wait for it or POST /stop"
    assert server.post("/stop").status_code == 200
    mover.join(timeout=10)
    assert outcome == {"status": 409, "detail": "cartesian move aborted by stop()"}
    state = client.state()
    assert state["holding"] and np.linalg.norm(np.subtract(state["cartesian_position"][:3], [0.43, -0.06, 0.2])) > 0.03


def test_a_contact_reflex_is_reported_and_cleared(server, client):
    client.command([0.49, 0.04, 0.16], DOWN)  # above the board's top, away from the hole
    time.sleep(0.5)
    for _ in range(40):  # press down onto the board until the arm refuses
        if server.post("/command", json={"position": [0.49, 0.04, 0.055], "orientation": DOWN}).status_code == 409:
            break
        time.sleep(0.05)
    state = client.state()
    assert len(state["errors"]) == 1 and state["errors"][0].startswith("cartesian_reflex: flange force")
    r = server.post("/command", json={"position": [0.49, 0.04, 0.16], "orientation": DOWN})
    assert r.status_code == 409 and r.json()["errors"] == state["errors"]
    assert "call clear_errors() to recover" in r.json()["detail"]
    with pytest.raises(RobotFaultError) as err:
        client.command([0.49, 0.04, 0.16], DOWN)
    assert err.value.errors == state["errors"]
    client.clear_errors()
    assert client.state()["errors"] == []
    assert client.command([0.49, 0.04, 0.16], DOWN)["clipped"] == []


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_record_pose_prints_and_saves_the_tcp_pose(server, client, tmp_path, capsys, suffix):
    station = tmp_path / f"station{suffix}"
    station.write_text(json.dumps({"control_hz": 10}) if suffix == ".json" else "control_hz: 10\n")
    main_record_pose(["--robot-url", server.url, "--station", str(station), "--key", "reset_pose"])
    out = capsys.readouterr().out
    assert "quaternion (w x y z):" in out and f"wrote reset_pose to {station}" in out
    data = read_station_file(station)
    assert data["control_hz"] == 10
    np.testing.assert_allclose(data["reset_pose"]["position"], RESET["position"], atol=0.003)
    np.testing.assert_allclose(np.abs(data["reset_pose"]["quat"]), DOWN, atol=0.01)
