"""SuccessClassifier: learns to separate synthetic success images, round-trips through its checkpoint, names the
bad key or shape, and `serl train-classifier` reads Minari datasets and PNG folders."""

from __future__ import annotations

import re

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from serl_agents.classifier import (
    ClassifierConfig,
    ClassifierTrainConfig,
    SuccessClassifier,
    binary_metrics,
    evaluate_classifier,
    load_frames,
    main_train_classifier,
    train_classifier,
)

SHAPE = (32, 32, 3)
SHAPES = {"front": SHAPE, "wrist": SHAPE}
SMALL_NET = dict(encoder_kwargs={"bottleneck_dim": 32}, hidden_dim=32)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small convolutions run fastest on one thread; more only contend on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic(count: int, success: bool, seed: int) -> dict[str, np.ndarray]:
    """Dim noise on both cameras; a success shows a bright 5x5 square at a random place in the front camera,
    a failure the same square in blue: only colour tells them apart (the wrist camera is noise either way)."""
    rng = np.random.default_rng(seed)
    frames = {key: rng.integers(0, 90, (count, *SHAPE), dtype=np.uint8) for key in SHAPES}
    for i in range(count):
        y, x = rng.integers(0, SHAPE[0] - 5, 2)
        frames["front"][i, y : y + 5, x : x + 5] = (250, 240, 40) if success else (40, 60, 250)
    return frames


def small_classifier(seed: int = 0, **kwargs) -> SuccessClassifier:
    return SuccessClassifier(ClassifierConfig(SHAPES, **{**SMALL_NET, **kwargs}), seed=seed)


def test_training_separates_synthetic_positives_from_negatives():
    config = ClassifierTrainConfig(
        steps=150, batch_size=32, lr=1e-3, eval_every=150, label_smoothing=0.1, mixup_alpha=0.4
    )
    classifier = train_classifier(
        synthetic(60, True, 0),
        synthetic(120, False, 1),
        config,
        ClassifierConfig(SHAPES, **SMALL_NET),
        verbose=False,
    )
    assert classifier.metrics["positives"] == 6 and classifier.metrics["negatives"] == 12  # the 10% held out
    held_out = evaluate_classifier(classifier, synthetic(50, True, 10), synthetic(50, False, 11))
    assert held_out["precision"] >= 0.95 and held_out["recall"] >= 0.95, held_out
    assert not classifier.training


def test_same_seed_same_classifier():
    config = ClassifierTrainConfig(
        steps=3, batch_size=8, val_fraction=0.0, mixup_alpha=1.0, gradient_penalty=10.0
    )
    pos, neg = synthetic(8, True, 0), synthetic(8, False, 1)
    a, b = (
        train_classifier(pos, neg, config, ClassifierConfig(SHAPES, **SMALL_NET), verbose=False) for _ in "ab"
    )
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert a.metrics == {}  # no validation set, no metrics


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    classifier = small_classifier(seed=3)
    classifier.metrics = {"precision": 0.97, "recall": 0.99}
    classifier.save(tmp_path / "clf.pt")
    payload = torch.load(tmp_path / "clf.pt", weights_only=True)  # no pickled objects in the file
    assert payload["format"] == "serl_agents.classifier/1"
    loaded = SuccessClassifier.load(tmp_path / "clf.pt")
    obs = synthetic(5, True, 2)
    assert torch.equal(loaded.predict_proba(obs), classifier.predict_proba(obs))
    assert loaded.config == classifier.config and loaded.metrics == classifier.metrics and not loaded.training
    with pytest.raises(ValueError, match="is not a success-classifier checkpoint"):
        torch.save({"format": "other"}, tmp_path / "bad.pt")
        SuccessClassifier.load(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="no classifier checkpoint at"):
        SuccessClassifier.load(tmp_path / "missing.pt")


def test_accepts_numpy_single_observations_and_float_images():
    classifier = small_classifier()
    batch = synthetic(3, True, 0)
    single = {key: value[1] for key, value in batch.items()} | {"state": np.zeros(7, np.float32)}
    p = classifier.predict_proba(single)
    assert p.shape == () and 0.0 <= float(p) <= 1.0
    assert torch.allclose(p, classifier.predict_proba(batch)[1])
    floats = {key: torch.as_tensor(value, dtype=torch.float32) / 255.0 for key, value in batch.items()}
    assert torch.allclose(classifier.predict_proba(floats), classifier.predict_proba(batch), atol=1e-6)


def test_wrong_keys_and_shapes_name_the_key_and_the_expected_shape():
    classifier = small_classifier()
    obs = synthetic(2, True, 0)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "observation lacks image key 'wrist'; the classifier reads {'front': (32, 32, 3), 'wrist': (32, 32, 3)} "
            "(got keys ['front'])"
        ),
    ):
        classifier.predict_proba({"front": obs["front"]})
    with pytest.raises(
        ValueError,
        match=re.escape("image 'front' has shape (2, 40, 40, 3); expected (32, 32, 3) or (batch, 32, 32, 3)"),
    ):
        classifier.predict_proba({**obs, "front": np.zeros((2, 40, 40, 3), np.uint8)})
    with pytest.raises(
        ValueError, match="image 'wrist' must be uint8 or floats in \\[0, 1\\], got dtype torch.int64"
    ):
        classifier.predict_proba({**obs, "wrist": obs["wrist"].astype(np.int64)})
    with pytest.raises(ValueError, match="the images of one observation must share a batch size"):
        classifier.predict_proba({**obs, "wrist": obs["wrist"][:1]})
    with pytest.raises(ValueError, match=re.escape("image_shapes['front'] must be (H, W, 3), got (32, 32)")):
        ClassifierConfig({"front": (32, 32)})


def test_binary_metrics():
    metrics = binary_metrics([0.9, 0.8, 0.2, 0.6, 0.1, 0.4], [1, 1, 1, 0, 0, 0])
    assert metrics == {
        "precision": 2 / 3,
        "recall": 2 / 3,
        "accuracy": 4 / 6,
        "positives": 3,
        "negatives": 3,
        "false_positives": 1,
        "false_negatives": 1,
    }
    assert binary_metrics([0.1, 0.2], [0, 0])["precision"] == 0.0


def write_minari(path, episodes):
    """A tiny vision dataset in serl_envs.demos' format; each episode: (front frames, is_success flags)."""
    from serl_envs.demos import DemoWriter, Episode

    space = gym.spaces.Dict(
        {"front": gym.spaces.Box(0, 255, SHAPE, np.uint8), "state": gym.spaces.Box(-1, 1, (2,), np.float32)}
    )
    writer = DemoWriter(path, space, gym.spaces.Box(-1, 1, (4,), np.float32))
    for frames, flags in episodes:
        steps = len(frames) - 1
        writer.append(
            Episode(
                observations=[{"front": f, "state": np.zeros(2, np.float32)} for f in frames],
                actions=[np.zeros(4, np.float32)] * steps,
                rewards=[0.0] * steps,
                terminations=[False] * steps,
                truncations=[False] * (steps - 1) + [True],
                infos={"is_success": list(flags)},
                success=flags[-1],
            )
        )


def test_load_frames_from_minari_uses_the_recorded_success_flags(tmp_path):
    frames = [np.full(SHAPE, i, np.uint8) for i in range(8)]
    write_minari(tmp_path / "demos", [(frames[:4], [False, False, True, True]), (frames[4:], [False] * 4)])
    success = load_frames(tmp_path / "demos", label=True)
    assert list(success) == ["front"] and success["front"][:, 0, 0, 0].tolist() == [2, 3]
    assert load_frames(tmp_path / "demos", label=False)["front"][:, 0, 0, 0].tolist() == [0, 1, 4, 5, 6, 7]
    assert len(load_frames(tmp_path / "demos")["front"]) == 8
    with pytest.raises(ValueError, match=re.escape("has no camera 'wrist'; its cameras are ['front']")):
        load_frames(tmp_path / "demos", ["wrist"])
    write_minari(tmp_path / "fails", [(frames[:3], [False] * 3)])
    with pytest.raises(ValueError, match="holds no success frames"):
        load_frames(tmp_path / "fails", label=True)
    with pytest.raises(FileNotFoundError, match="no dataset at"):
        load_frames(tmp_path / "nothing")


def write_pngs(folder, frames):
    for key, images in frames.items():
        (folder / key).mkdir(parents=True)
        for i, image in enumerate(images):
            imageio.imwrite(folder / key / f"{i:04d}.png", image)


def test_cli_trains_from_png_folders_and_saves_a_loadable_checkpoint(tmp_path, capsys):
    write_pngs(tmp_path / "pos", synthetic(6, True, 0))
    write_pngs(tmp_path / "neg", synthetic(10, False, 1))
    out = tmp_path / "clf.pt"
    code = main_train_classifier(
        [
            "--positives",
            str(tmp_path / "pos"),
            "--negatives",
            str(tmp_path / "neg"),
            "--out",
            str(out),
            "--steps",
            "4",
            "--batch-size",
            "4",
            "--val-fraction",
            "0.2",
            "--eval-every",
            "2",
            "--label-smoothing",
            "0.1",
        ]
    )
    assert code == 0
    printed = capsys.readouterr()
    assert (
        "6 positive and 10 negative frames; cameras {'front': (32, 32, 3), 'wrist': (32, 32, 3)}"
        in printed.out
    )
    assert "step 4: validation precision" in printed.out + printed.err
    loaded = SuccessClassifier.load(out)
    assert (
        loaded.image_shapes == SHAPES
        and loaded.metrics["positives"] == 1
        and loaded.metrics["negatives"] == 2
    )
    single = load_frames(tmp_path / "pos" / "front", ["front"])  # a flat folder for a single camera
    assert single["front"].shape == (6, *SHAPE)
    with pytest.raises(
        ValueError, match=r"needs one subfolder of PNGs per camera .*missing subfolders for \['top'\]"
    ):
        load_frames(tmp_path / "pos", ["front", "top"])
    with pytest.raises(SystemExit):
        main_train_classifier(["--positives", "a", "--negatives", "b", "--out", "c", "--batch-size", "3"])
    assert "batch_size must be even and >= 2" in capsys.readouterr().err
