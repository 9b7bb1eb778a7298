"""Bad input to the robot server: each is answered with its documented status and message, and the server keeps
serving. Plus a bounded schemathesis run against the served OpenAPI spec: no 5xx, responses as documented."""

from __future__ import annotations

import numpy as np
import pytest
from real_server import BOX, ServerProcess

import serl_envs  # noqa: F401
from serl_envs.real.client import RobotClient, RobotServerError

TOKEN = "s3cret-token"
DOWN = [0.0, 1.0, 0.0, 0.0]


@pytest.fixture(scope="module")
def server(station_file):
    srv = ServerProcess("--station", str(station_file), "--speed", "20", token=TOKEN)
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def still_serving(server):
    yield
    assert server.get("/health").json()["status"] == "ok"  # after every bad request


def detail(response) -> str:
    return response.json()["detail"]


@pytest.mark.parametrize("route", ["/health", "/state", "/openapi.json", "/docs", "/compliance"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
def test_every_route_needs_the_token(server, route, headers):
    r = server.get(route, headers=headers)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert detail(r) == "missing or wrong bearer token: send the header Authorization: Bearer <token>"


def test_commands_need_the_token_too(server):
    r = server.post("/command", headers={}, json={"position": [0.5, 0.0, 0.15], "orientation": DOWN})
    assert r.status_code == 401
    assert server.post("/stop", headers={}).status_code == 401


def test_malformed_json_is_a_400(server):
    r = server.post("/command", content=b'{"position": [0.5, 0.0,', headers={**server.headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and detail(r).startswith("malformed JSON body:")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"position": [0.5, 0.0], "orientation": DOWN}, "position: List should have at least 3 items after validation, not 2"),
        ({"position": [0.5, 0.0, 0.1], "orientation": [0, 1, 0]}, "orientation: List should have at least 4 items"),
        ({"position": [0.5, 0.0, 0.1]}, "orientation: Field required"),
        ({"position": [0.5, "a", 0.1], "orientation": DOWN}, "position.1: Input should be a valid number"),
        ({"position": [0.5, 0.0, 0.1], "orientation": DOWN, "speed": 3}, "speed: Extra inputs are not permitted"),
        ({"position": [0.5, 0.0, 0.1], "orientation": DOWN, "gripper": 1.5}, "gripper: Input should be less than or equal to 1"),
    ],
)
def test_wrong_shapes_and_types_are_422_naming_the_field(server, body, message):
    r = server.post("/command", json=body)
    assert r.status_code == 422 and message in detail(r)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_422(server, literal):
    body = f'{{"position": [0.5, 0.0, {literal}], "orientation": [0, 1, 0, 0]}}'
    r = server.post("/command", content=body.encode(), headers={**server.headers, "Content-Type": "application/json"})
    assert r.status_code == 422 and detail(r) == "position.2: Input should be a finite number"


def test_a_non_unit_quaternion_is_a_400(server):
    r = server.post("/command", json={"position": [0.5, 0.0, 0.15], "orientation": [0.0, 2.0, 0.0, 0.0]})
    assert r.status_code == 400
    assert detail(r) == "orientation must be a unit quaternion (wxyz), got norm 2: [0.0, 2.0, 0.0, 0.0]"


def test_out_of_box_targets_are_clipped_and_reported(server):
    r = server.post("/command", json={"position": [0.9, -0.5, 0.18], "orientation": DOWN})
    assert r.status_code == 200
    out = r.json()
    assert set(out["clipped"]) >= {"x", "y"} and "z" not in out["clipped"]
    assert out["position"][0] <= BOX["high"][0] and out["position"][1] >= BOX["low"][1]
    assert server.get("/state").json()["target_position"] == out["position"]
    rolled = [-0.14943813, 0.98877108, 0.0, 0.0]  # pointing down, rolled 0.3 rad about x: beyond the box's 0.1
    r = server.post("/command", json={"position": [0.53, 0.04, 0.16], "orientation": rolled})
    assert r.status_code == 200 and r.json()["clipped"] == ["rx"]
    turned = [0.0, 0.87758256, 0.47942554, 0.0]  # turned 1 rad about z at once: faster than 3 rad/s over 0.2 s
    r = server.post("/command", json={"position": [0.53, 0.04, 0.16], "orientation": turned})
    assert r.status_code == 200 and "angular_speed" in r.json()["clipped"]


def test_blocking_moves_reject_what_they_cannot_do(server):
    r = server.post("/move/pose", json={"position": [0.9, 0.0, 0.15], "orientation": DOWN})
    assert r.status_code == 400 and "is outside the safety box" in detail(r)
    r = server.post("/move/joints", json={"positions": [0.0] * 6})
    assert r.status_code == 400 and detail(r) == "joint_positions must have shape (7,), got shape (6,): [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]"
    r = server.post("/move/joints", json={"positions": [4.0, 0, 0, -2, 0, 2, 0.8]})
    assert r.status_code == 400 and detail(r).startswith("joint_positions outside the joint limits at joints [0]: [4.0]")


def test_gripper_and_compliance_validation(server):
    r = server.post("/gripper", json={"action": "move"})
    assert r.status_code == 422 and "width (m) is required with action 'move'" in detail(r)
    r = server.post("/gripper", json={"action": "move", "width": 0.5})
    assert r.status_code == 400 and detail(r) == "gripper width must be in [0, 0.08] m, got 0.5"
    good = server.get("/compliance").json()
    r = server.post("/compliance", json={**good, "translational_stiffness": -5})
    assert r.status_code == 422 and detail(r).startswith("translational_stiffness: Input should be greater than 0")
    r = server.post("/compliance", json={**good, "translational_damping": 120.0})
    assert r.status_code == 200 and server.get("/compliance").json()["translational_damping"] == 120.0


def test_unknown_camera_is_a_400_and_images_round_trip(server):
    r = server.get("/cameras", params={"names": "front,top"})
    assert r.status_code == 400 and detail(r) == "cameras ['top'] are not served; this server serves ['front', 'wrist']"
    client = RobotClient(server.url, TOKEN)
    images = client.cameras(["wrist", "front"])
    assert list(images) == ["wrist", "front"] and images["front"].shape == (128, 128, 3)
    assert images["front"].dtype == np.uint8 and images["front"].std() > 1.0
    client.close()


def test_the_client_raises_the_servers_message(server):
    client = RobotClient(server.url, TOKEN)
    with pytest.raises(RobotServerError, match=r"-> 400: position \[0.9, 0.0, 0.15\] is outside the safety box") as err:
        client.move_pose([0.9, 0.0, 0.15], DOWN)
    assert err.value.status == 400
    client.close()
    with pytest.raises(RobotServerError, match="-> 401: missing or wrong bearer token"):
        RobotClient(server.url, "nope").state()


def fuzz(server, operation, mode, checks) -> None:
    """One bounded, derandomized hypothesis run of one operation."""
    from hypothesis import HealthCheck, given, settings

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=15, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call(base_url=server.url, headers=server.headers, timeout=30)
        case.validate_response(response, checks=checks, headers=server.headers)

    run()


def test_schemathesis_finds_no_server_error(server):
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        negative_data_rejection,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json", headers=server.headers)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 11
    for operation in operations:
        fuzz(server, operation, GenerationMode.POSITIVE, checks)
        if list(operation.iter_parameters()) or operation.get_request_payload_content_types():
            fuzz(server, operation, GenerationMode.NEGATIVE, [*checks, negative_data_rejection])
