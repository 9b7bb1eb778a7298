"""`serl train` / `serl eval`: the loop writes what it promises, resumes, and rejects bad arguments clearly."""

import csv
import json
import os

import pytest
import torch

from serl_agents.cli import main
from serl_agents.config import PRESETS, TrainConfig, apply_preset

os.environ["SERL_NO_PROGRESS"] = "1"
TINY = [
    "--agent-kwargs",
    json.dumps(
        {
            "critic_network_kwargs": {"hidden_dims": [32, 32]},
            "policy_network_kwargs": {"hidden_dims": [32, 32]},
            "critic_ensemble_size": 2,
        }
    ),
]


def run(argv):
    return main(argv)


def test_train_writes_curve_checkpoint_video_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    common = [
        "train",
        "--env",
        "SerlFrankaPickCube-v0",
        "--out",
        str(out),
        "--batch-size",
        "32",
        "--utd-ratio",
        "2",
        "--random-steps",
        "50",
        "--training-starts",
        "50",
        "--eval-every",
        "100",
        "--eval-episodes",
        "2",
        "--checkpoint-every",
        "100",
        *TINY,
    ]
    assert run([*common, "--steps", "200"]) == 0
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert [int(r["env_steps"]) for r in rows] == [100, 200]
    assert all(0.0 <= float(r["eval_success_rate"]) <= 1.0 for r in rows)
    assert (out / "checkpoints" / "latest").read_text() == "step_000000200"
    assert (out / "videos" / "step_000000200.mp4").stat().st_size > 0
    assert list((out / "tb").glob("events.out.tfevents.*"))
    config = json.loads((out / "config.json").read_text())
    assert config["env"] == "SerlFrankaPickCube-v0" and config["agent_kwargs"]["critic_ensemble_size"] == 2

    # Resume: continues from step 200 with the saved buffer, up to 300.
    capsys.readouterr()
    assert run([*common, "--steps", "300", "--resume", "true"]) == 0
    assert "resumed from step 200 (200 transitions in the buffer)" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert [int(r["env_steps"]) for r in rows] == [100, 200, 300]
    loop = json.loads((out / "checkpoints" / "step_000000300" / "loop.json").read_text())
    assert loop["step"] == 300

    capsys.readouterr()
    assert run(["eval", "--checkpoint", str(out), "--episodes", "2"]) == 0
    assert "SerlFrankaPickCube-v0: success" in capsys.readouterr().out


def test_presets_and_print_config(capsys):
    assert run(["train", "--preset", "hil-serl", "--steps", "7", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["agent"] == "drq" and printed["utd_ratio"] == 2 and printed["steps"] == 7
    assert (
        printed["agent_kwargs"]["critic_ensemble_size"] == 2 and printed["agent_kwargs"]["discount"] == 0.97
    )
    cfg = apply_preset("serl-sac-state", {"agent_kwargs": {"discount": 0.9}})
    assert cfg.agent_kwargs == {**PRESETS["serl-sac-state"]["agent_kwargs"], "discount": 0.9}


def test_bad_arguments_give_clear_errors(capsys):
    with pytest.raises(SystemExit):
        run(["train", "--preset", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(["train", "--agent", "ppo", "--print-config"])
    assert "agent must be one of ['bc', 'drq', 'sac'], got 'ppo'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="batch_size 100 must be divisible by utd_ratio 8"):
        TrainConfig(batch_size=100, utd_ratio=8)
    from serl_agents.train import make_env

    with pytest.raises(ValueError, match=r"unknown env 'SerlFrankaNope-v0'.*SerlFrankaPickCube-v0"):
        make_env("SerlFrankaNope-v0")
    assert run(["frobnicate"]) == 2


def test_expert_demos_default_to_20_on_sim_ids_only():
    assert TrainConfig().n_expert_demos == 20
    assert TrainConfig(expert_demos=0).n_expert_demos == 0
    assert TrainConfig(demos="demos/pick").n_expert_demos == 0
    assert TrainConfig(env="SerlFrankaPegInsertReal-v0").n_expert_demos == 0
    assert apply_preset("serl-sac-state", {}).n_expert_demos == 0
    with pytest.raises(ValueError, match="pass either demos"):
        TrainConfig(demos="demos/pick", expert_demos=5)


def test_interventions_reach_both_buffers(tmp_path):
    """HIL-SERL: with the scripted expert taking the last 30% of each episode, those steps (and only those) are
    stored with the expert's action in the online buffer and in the demo buffer."""
    from serl_agents.train import Trainer

    cfg = TrainConfig(env="SerlFrankaPickCube-v0", steps=200, out=tmp_path / "hil", intervention="expert",
                      intervention_fraction=0.3, expert_demos=0, training_starts=1000, eval_every=10_000,
                      checkpoint_every=10_000, video=False, eval_episodes=1,
                      agent_kwargs=json.loads(TINY[1]))
    trainer = Trainer(cfg)
    trainer.train()
    assert len(trainer.replay) == 200
    assert len(trainer.demo_buffer) == 2 * 30  # two 100-step episodes, the last 30 steps of each
    demo = trainer.demo_buffer.sample(60)
    online = trainer.replay.sample(200)
    # Every demo action is an expert action that also sits in the online buffer.
    online_actions = {tuple(a.tolist()) for a in online["actions"]}
    assert sum(tuple(a.tolist()) in online_actions for a in demo["actions"]) > 0
    rows = list(csv.DictReader((tmp_path / "hil" / "eval.csv").open()))
    assert int(rows[-1]["env_steps"]) == 200
    # The interventions survive a checkpoint round trip.
    resumed = Trainer(cfg)
    assert resumed.load_checkpoint() and len(resumed.demo_buffer) == 60



def test_every_documented_command_is_wired(capsys):
    assert run([]) == 0
    listing = capsys.readouterr().out
    for command in ("train", "eval", "pause", "train-classifier", "record-demos", "bench", "robot-server", "record-pose"):
        assert f"  {command} " in listing


def test_critic_defaults_apply_to_sac_and_drq_only():
    assert TrainConfig().agent_kwargs == {"critic_ensemble_size": 2, "critic_subsample_size": None}
    assert "critic_ensemble_size" not in TrainConfig(agent="bc").agent_kwargs
    assert apply_preset("serl-sac-state", {}).agent_kwargs["critic_ensemble_size"] == 10



def test_env_kwargs_reach_every_env_of_the_run_and_serl_eval(tmp_path, capsys):
    """The drq-cpu preset's smaller cameras (here 32x32): expert demos, training and evaluation envs, the agent's
    encoders and `serl eval` of the run all use them (a 128x128 env would fail the encoder's shape check)."""
    from serl_agents.train import Trainer

    out = tmp_path / "small_cameras"
    cfg = apply_preset("drq-cpu", {
        "env": "SerlFrankaPickCubeVision-v0", "steps": 40, "out": out, "env_kwargs": {"image_size": [32, 32]},
        "batch_size": 8, "training_starts": 20, "expert_demos": 1, "eval_every": 40, "eval_episodes": 1,
        "checkpoint_every": 40, "video": False, "torch_threads": 1,
        "agent_kwargs": {"critic_network_kwargs": {"hidden_dims": [16]}, "policy_network_kwargs": {"hidden_dims": [16]}},
    })  # fmt: skip
    assert cfg.agent_kwargs["amp"] is True and cfg.agent_kwargs["encoder_kwargs"] == {"features": [16, 32, 64, 128]}
    trainer = Trainer(cfg)
    for env in (trainer.env, trainer.eval_env):
        assert env.observation_space["front"].shape == (32, 32, 3)
    assert trainer.demo_buffer.sample(4)["observations"]["wrist"].shape == (4, 32, 32, 3)
    encoders = trainer.agent.encoder.cameras.encoders
    assert {key: encoder.image_shape for key, encoder in encoders.items()} == {
        "front": (32, 32, 3), "wrist": (32, 32, 3)
    }
    convs = [m for m in encoders["front"].backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [conv.out_channels for conv in convs] == [16, 32, 64, 128]
    trainer.train()
    assert json.loads((out / "config.json").read_text())["env_kwargs"] == {"image_size": [32, 32]}

    capsys.readouterr()
    assert run(["eval", "--checkpoint", str(out), "--episodes", "1"]) == 0
    assert "SerlFrankaPickCubeVision-v0: success" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"observations\['front'\] has shape \(64, 64, 3\), expected \(32, 32, 3\)"):
        run(["eval", "--checkpoint", str(out), "--episodes", "1", "--env-kwargs", '{"image_size": [64, 64]}'])


def test_env_kwargs_merge_with_the_preset_and_must_be_an_object():
    overrides = {"env_kwargs": {"control_hz": 10}, "vice_kwargs": {"reward": "probability"}}
    cfg = apply_preset("drq-cpu", overrides)
    assert cfg.env_kwargs == {"image_size": [64, 64], "control_hz": 10}
    assert cfg.vice_kwargs == {"encoder_kwargs": {"features": [16, 32, 64, 128]}, "reward": "probability"}
    assert overrides == {"env_kwargs": {"control_hz": 10}, "vice_kwargs": {"reward": "probability"}}  # untouched
    with pytest.raises(ValueError, match=r"^env_kwargs must be a JSON object of gym.make arguments, got \[64, 64\]$"):
        TrainConfig(env_kwargs=[64, 64])


def test_ctrl_c_stops_between_steps_with_a_checkpoint_and_resume_continues(tmp_path):
    """A real `serl train` process gets SIGINT mid-run: it ends cleanly, its checkpoint holds every transition and
    the exact step, and `--resume true` continues from there."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    common = [sys.executable, "-m", "serl_agents.cli", "train", "--env", "SerlFrankaPickCube-v0", "--out", str(out),
              "--batch-size", "16", "--training-starts", "50", "--expert-demos", "0", "--eval-every", "100",
              "--eval-episodes", "1", "--checkpoint-every", "100000", "--video", "false", "--torch-threads", "1",
              *TINY]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SERL_NO_PROGRESS": "1"}
    proc = subprocess.Popen([*common, "--steps", "100000"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)  # fmt: skip
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("step 100: eval"):
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=120)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "stopping after this step; a checkpoint follows" in output and "Traceback" not in output
    stopped = [line for line in output.splitlines() if line.startswith("stopped at step ")]
    assert len(stopped) == 1 and "continue with --resume true" in stopped[0], output
    step = int(stopped[0].split()[3])
    assert 100 <= step < 100000
    folder = out / "checkpoints" / (out / "checkpoints" / "latest").read_text()
    assert json.loads((folder / "loop.json").read_text())["step"] == step

    resumed = subprocess.run([*common, "--steps", str(step + 20), "--resume", "true"], capture_output=True,
                             text=True, env=env, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed from step {step} ({step} transitions in the buffer)" in resumed.stdout
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert int(rows[-1]["env_steps"]) == step + 20
