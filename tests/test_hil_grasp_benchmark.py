"""benchmarks/hil_grasp.py: both runs are commands `serl train` accepts, and the figure reads eval.csv and TensorBoard."""

import argparse
import json

from benchmarks.hil_grasp import intervention_curve, plot, success_curve, train_command
from serl_agents.cli import main as serl_main


def test_the_two_runs_differ_only_in_the_grasp_critic(tmp_path, capsys):
    args = argparse.Namespace(env="SerlFrankaPickCubeVision-v0", steps=10_000, eval_every=2_000, seed=3, out=tmp_path,
                              full_size=False)  # fmt: skip
    configs = {}
    for mode in ("auto", "off"):
        assert serl_main([*train_command(mode, args), "--print-config"]) == 0
        configs[mode] = json.loads(capsys.readouterr().out)
    auto, off = configs["auto"], configs["off"]
    assert (auto["grasp_critic"], off["grasp_critic"]) == ("auto", "off")
    assert {k for k in auto if auto[k] != off[k]} == {"grasp_critic", "out"}
    assert (auto["agent"], auto["intervention"], auto["intervention_episodes"], auto["seed"]) == ("drq", "expert", 20, 3)
    assert auto["env_kwargs"] == {"image_size": [64, 64]} and auto["batch_size"] == 128
    assert auto["agent_kwargs"]["discount"] == 0.97 and auto["agent_kwargs"]["amp"] is True  # hil-serl + CPU sizing
    full = argparse.Namespace(**{**vars(args), "full_size": True})
    assert serl_main([*train_command("auto", full), "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["env_kwargs"] == {}


def test_figure_reads_success_and_intervention_rate(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path / "grasp_auto"
    run.mkdir()
    (run / "eval.csv").write_text("env_steps,wall_time,eval_return,eval_success_rate\n2000,1,3.0,0.3\n4000,2,9.0,0.8\n")
    writer = SummaryWriter(str(run / "tb"))
    for step, rate in ((100, 0.3), (200, 0.3), (2100, 0.0)):
        writer.add_scalar("train/intervention_rate", rate, step)
    writer.close()
    assert success_curve(run) == ([2000, 4000], [0.3, 0.8])
    steps, rates = intervention_curve(run)
    assert steps == [100, 200, 2100] and [round(r, 3) for r in rates] == [0.3, 0.3, 0.0]
    png = plot(tmp_path)  # the "off" run is missing: drawn without it
    assert png == tmp_path / "hil_grasp.png" and png.stat().st_size > 10_000
