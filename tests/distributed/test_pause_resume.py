"""A whole run pauses (checkpoint of agent, optimizer and buffers) on request and resumes where it stopped;
Ctrl-C stops everything without waiting for the end of the run."""

import json
import os
import signal
import threading

from async_helpers import stored_rows, tiny_config, two_actors, wait_for_step

from serl_agents.distributed import request_pause, run_async


def test_pause_then_resume_continues_steps_buffer_and_weights(local_ray, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(out, steps=1500)
    acfg = two_actors(num_actors=1)
    pauser = threading.Thread(target=lambda: (wait_for_step(local_ray, 700), request_pause(out)))
    pauser.start()
    paused = run_async(cfg, acfg)
    pauser.join()

    assert paused.status == "paused" and 700 <= paused.step < 1500
    assert paused.checkpoint.endswith(f"step_{paused.step:09d}")
    outcome = json.loads((out / "paused.json").read_text())
    assert outcome == {"step": paused.step, "checkpoint": paused.checkpoint, "resume": paused.resume}
    assert paused.resume.startswith("serl train --async --steps 1500 --out ") and "--resume true" in paused.resume
    assert stored_rows(f"{paused.checkpoint}/replay.npz")[1] == paused.step
    assert not (out / "async_run.json").exists() and not (out / "pause.request").exists()

    resumed = run_async(tiny_config(out, steps=1500, resume=True), acfg)
    assert resumed.start["resumed"]
    assert (resumed.start["step"], resumed.start["buffer"], resumed.start["updates"]) == (
        paused.step, paused.step, paused.updates)
    start = resumed.learner["actors"][0]["starts"][0]
    assert start["start"] == 2 and start["first_version"] >= paused.updates  # acts with the paused weights or newer
    assert resumed.status == "finished" and resumed.step == 1500 and resumed.updates > paused.updates
    loop = json.loads((out / "checkpoints" / "step_000001500" / "loop.json").read_text())
    assert loop["step"] == 1500 and loop["starts"] == {"0": 2}
    assert stored_rows(f"{resumed.checkpoint}/replay.npz")[1] == 1500


def test_ctrl_c_stops_the_run_and_its_workers(local_ray, tmp_path):
    cfg = tiny_config(tmp_path / "run", steps=100_000)

    def interrupt():
        wait_for_step(local_ray, 300)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt).start()
    summary = run_async(cfg, two_actors())
    assert summary.status == "stopped" and 300 <= summary.step < 100_000
    assert summary.checkpoint is None  # Ctrl-C does not wait for a checkpoint (use `serl pause` for that)
    alive = [a for a in local_ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("serl-")]
    states = [local_ray.util.state.get_actor(a["name"]) for a in alive] if alive else []
    assert all(s is None or s.state == "DEAD" for s in states)
