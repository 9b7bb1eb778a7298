"""Binary success classifier on camera images: the learned reward of SERL (VICE) and HIL-SERL.

`SuccessClassifier`: one DrQ image encoder per camera (`make_encoder`, joined by `MultiCameraEncoder`), features
concatenated, then HIL-SERL's head Linear(256) -> Dropout(0.1) -> LayerNorm -> ReLU -> Linear(1): a success logit.
`train_classifier` fits it with BCE on balanced batches (half positive, half negative, as HIL-SERL) under random-shift
augmentation, optionally with label smoothing, mixup and a gradient penalty (`classifier_loss`, shared with VICE), and
reports validation precision and recall. `serl train-classifier` (`main_train_classifier`) reads Minari datasets
(`serl_envs.demos`) or folders of PNG images. A checkpoint is one file, written atomically: the weights plus the
network config as JSON, read back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from serl_agents.augment import augment_observations
from serl_agents.checkpoint import atomic_save
from serl_agents.nets.encoders import ENCODERS, MultiCameraEncoder, make_encoder
from serl_agents.sac import evaluation_mode, has_dropout, seeded_dropout

FORMAT = "serl_agents.classifier/1"
Frames = dict[str, np.ndarray]  # camera key -> (N, H, W, 3) uint8 frames, the same N for every key


@dataclass(frozen=True)
class ClassifierConfig:
    """The network: which cameras it reads and how it encodes them."""

    image_shapes: dict[str, tuple[int, int, int]]  # camera key -> (H, W, 3), in feature order
    encoder: str = "small"  # a `make_encoder` name ("small" trains on a CPU; "resnet10")
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to make_encoder (pooling, freeze, ...)
    hidden_dim: int = 256  # width of the head's hidden layer (HIL-SERL: 256)
    dropout: float = 0.1  # dropout in the head (HIL-SERL: 0.1); off in eval()

    def __post_init__(self) -> None:
        shapes = {str(key): tuple(int(size) for size in shape) for key, shape in dict(self.image_shapes).items()}
        if not shapes:
            raise ValueError("image_shapes must name at least one camera, e.g. {'front': (128, 128, 3)}")
        for key, shape in shapes.items():
            if len(shape) != 3 or shape[2] != 3 or min(shape) < 1:
                raise ValueError(f"image_shapes[{key!r}] must be (H, W, 3), got {shape}")
        object.__setattr__(self, "image_shapes", shapes)
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {list(ENCODERS)}, got {self.encoder!r}")
        if self.hidden_dim < 1:
            raise ValueError(f"hidden_dim must be >= 1, got {self.hidden_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class SuccessClassifier(nn.Module):
    """obs (a dict of camera images) -> success logit. `predict_proba` gives the probability, in eval mode.

    Images are uint8 (as the envs produce) or floats in [0, 1], numpy or tensors, batched (B, H, W, 3) or
    single (H, W, 3); other observation keys ("state") are ignored. Weights are initialised from `seed`
    without touching torch's global RNG.
    """

    def __init__(self, config: ClassifierConfig, seed: int = 0):
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder = MultiCameraEncoder(
                {
                    key: make_encoder(config.encoder, shape, **config.encoder_kwargs)
                    for key, shape in config.image_shapes.items()
                }
            )
            self.head = nn.Sequential(
                nn.Linear(self.encoder.output_dim, config.hidden_dim),
                nn.Dropout(config.dropout),
                nn.LayerNorm(config.hidden_dim),
                nn.ReLU(),
                nn.Linear(config.hidden_dim, 1),
            )
        self.metrics: dict[str, float] = {}  # validation metrics of the last training run (saved with the weights)

    @property
    def image_shapes(self) -> dict[str, tuple[int, int, int]]:
        return self.config.image_shapes

    @property
    def device(self) -> torch.device:
        return self.head[0].weight.device

    def images(self, obs: Mapping[str, Any]) -> tuple[dict[str, Tensor], bool]:
        """The camera images of `obs` as batched tensors on the classifier's device, and whether `obs` was a
        single observation. Raises a ValueError naming the key for a missing camera or a wrong shape."""
        expected = dict(self.image_shapes)
        if not isinstance(obs, Mapping):
            raise ValueError(f"the classifier takes a dict of camera images {expected}, got {type(obs).__name__}")
        out: dict[str, Tensor] = {}
        batch_shapes = set()
        single = False
        for key, shape in expected.items():
            if key not in obs:
                raise ValueError(
                    f"observation lacks image key {key!r}; the classifier reads {expected} (got keys {sorted(obs)})"
                )
            value = torch.as_tensor(obs[key], device=self.device)
            if value.ndim not in (3, 4) or tuple(value.shape[-3:]) != shape:
                batched = ", ".join(map(str, shape))
                raise ValueError(f"image {key!r} has shape {tuple(value.shape)}; expected {shape} or (batch, {batched})")
            if value.dtype != torch.uint8 and not value.is_floating_point():
                raise ValueError(f"image {key!r} must be uint8 or floats in [0, 1], got dtype {value.dtype}")
            single = value.ndim == 3
            out[key] = value.unsqueeze(0) if single else value
            batch_shapes.add((single, out[key].shape[0]))
        if len(batch_shapes) > 1:
            raise ValueError(f"the images of one observation must share a batch size, got shapes "
                             f"{ {key: tuple(value.shape) for key, value in out.items()} }")
        return out, single

    def features(self, images: Mapping[str, Tensor]) -> Tensor:
        """(B, D) encoder features of batched images (as returned by `images`): the head's input."""
        return self.encoder(images)

    def logits(self, features: Tensor) -> Tensor:
        return self.head(features).squeeze(-1)

    def forward(self, obs: Mapping[str, Any]) -> Tensor:
        """Success logits, shape (B,) for a batch, () for a single observation."""
        images, single = self.images(obs)
        logits = self.logits(self.features(images))
        return logits[0] if single else logits

    @torch.no_grad()
    def predict_proba(self, obs: Mapping[str, Any]) -> Tensor:
        """Success probabilities in eval mode (no dropout): (B,) for a batch, a 0-d tensor for one observation,
        so `float(classifier.predict_proba(obs))` is a reward."""
        with evaluation_mode(self):
            return torch.sigmoid(self(obs))

    def save(self, path: str | os.PathLike) -> None:
        """Weights + config + metrics in one file, written atomically (readable with weights_only=True)."""
        atomic_save(
            {
                "format": FORMAT,
                "config": json.dumps(dataclasses.asdict(self.config)),
                "state_dict": self.state_dict(),
                "metrics": json.dumps(self.metrics),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> SuccessClassifier:
        """Rebuild a classifier saved by `save`, in eval mode on `device`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no classifier checkpoint at {path}")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a success-classifier checkpoint (format {FORMAT!r})")
        classifier = cls(ClassifierConfig(**json.loads(payload["config"])))
        classifier.load_state_dict(payload["state_dict"])
        classifier.metrics = json.loads(payload["metrics"])
        return classifier.to(device).eval()


# ------------------------------------------------------------------------------------------------------- the loss


def smooth_labels(labels: Tensor, smoothing: float) -> Tensor:
    """Pull 0/1 targets towards 1/2: y (1 - s) + s / 2. Keeps the optimal logits finite."""
    return labels * (1.0 - smoothing) + 0.5 * smoothing


def sample_beta(alpha: float, size: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """`size` draws of Beta(alpha, alpha) from `generator` (torch's Beta sampler only uses the global RNG)."""
    seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    return torch.as_tensor(np.random.default_rng(seed).beta(alpha, alpha, size), dtype=torch.float32, device=device)


def classifier_loss(
    classifier: SuccessClassifier,
    positives: Mapping[str, Tensor],
    negatives: Mapping[str, Tensor],
    generator: torch.Generator,
    label_smoothing: float = 0.0,
    mixup_alpha: float = 0.0,
    gradient_penalty: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Binary cross-entropy of positives (label 1) against negatives (label 0), with optional regularisers.

    Mixup and the gradient penalty act on the encoder features (the head's input), as SERL's VICE computes them on
    encoded images; in pixel space the penalty would cost a double backward through the convolutions (5x an update
    on a CPU).
    - mixup (alpha > 0): each sample's features and target are mixed with a random partner's, with a weight drawn
      from Beta(alpha, alpha) per sample ("manifold mixup"): the output varies smoothly between the classes.
    - gradient penalty (weight > 0): WGAN-GP's mean (||d logit / d f|| - 1)^2 at random points f on the segments
      between the i-th positive and the i-th negative features, which bounds how sharply the logit can change
      between the two classes (the points are detached: the penalty trains the head).
    """
    keys = list(classifier.image_shapes)
    pos = next(iter(positives.values())).shape[0]
    neg = next(iter(negatives.values())).shape[0]
    obs = {key: torch.cat([positives[key], negatives[key]]) for key in keys}
    features = classifier.features(obs)
    device = features.device
    labels = torch.cat([torch.ones(pos, device=device), torch.zeros(neg, device=device)])
    targets = smooth_labels(labels, label_smoothing)
    mixed = features
    if mixup_alpha > 0:
        size = pos + neg
        weight = sample_beta(mixup_alpha, size, generator, device)
        partner = torch.randperm(size, generator=generator, device=generator.device).to(device)
        mixed = weight[:, None] * features + (1.0 - weight[:, None]) * features[partner]
        targets = weight * targets + (1.0 - weight) * targets[partner]
    bce = F.binary_cross_entropy_with_logits(classifier.logits(mixed), targets)
    info = {"bce": bce}
    loss = bce
    if gradient_penalty > 0:
        pairs = min(pos, neg)
        if pairs == 0:
            raise ValueError("the gradient penalty needs at least one positive and one negative")
        share = torch.rand(pairs, 1, generator=generator, device=generator.device).to(device)
        start, end = features[:pairs].detach(), features[pos : pos + pairs].detach()
        with torch.enable_grad():  # the penalty needs d logit / d points, also when evaluated under no_grad
            points = (share * start + (1.0 - share) * end).requires_grad_(True)
            (grads,) = torch.autograd.grad(classifier.logits(points).sum(), points, create_graph=True)
        norms = (grads.square().sum(dim=-1) + 1e-12).sqrt()
        penalty = (norms - 1.0).square().mean()
        loss = loss + gradient_penalty * penalty
        info.update(gradient_penalty=penalty, grad_norm=norms.mean())
    info["loss"] = loss
    return loss, info


# ---------------------------------------------------------------------------------------------------- evaluation


def binary_metrics(probabilities: Any, labels: Any, threshold: float = 0.5) -> dict[str, float]:
    """Precision, recall and accuracy of `probabilities >= threshold` against 0/1 `labels` (numpy or tensors).

    Precision is 0 when nothing is predicted positive, recall is 0 when there are no positives.
    """
    predicted = np.asarray(probabilities, dtype=np.float64).reshape(-1) >= threshold
    actual = np.asarray(labels, dtype=np.float64).reshape(-1) > 0.5
    if predicted.shape != actual.shape:
        raise ValueError(f"got {predicted.size} probabilities but {actual.size} labels")
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    fn = int(np.sum(~predicted & actual))
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy": float(np.mean(predicted == actual)) if actual.size else 0.0,
        "positives": int(actual.sum()),
        "negatives": int((~actual).sum()),
        "false_positives": fp,
        "false_negatives": fn,
    }


def predict_frames(classifier: SuccessClassifier, frames: Mapping[str, Any], batch_size: int = 256) -> np.ndarray:
    """Success probabilities of every frame of `frames`, in chunks of `batch_size`."""
    count = check_frames(frames, "frames", classifier.image_shapes)
    chunks = [
        classifier.predict_proba({key: value[start : start + batch_size] for key, value in frames.items()})
        for start in range(0, count, batch_size)
    ]
    return torch.cat(chunks).cpu().numpy() if chunks else np.zeros(0)


def evaluate_classifier(
    classifier: SuccessClassifier, positives: Frames, negatives: Frames, threshold: float = 0.5
) -> dict[str, float]:
    """`binary_metrics` of the classifier on labelled frames."""
    probabilities = np.concatenate([predict_frames(classifier, positives), predict_frames(classifier, negatives)])
    counts = [len(next(iter(frames.values()))) for frames in (positives, negatives)]
    labels = np.concatenate([np.ones(counts[0]), np.zeros(counts[1])])
    return binary_metrics(probabilities, labels, threshold)


def check_frames(
    frames: Mapping[str, Any], name: str, image_shapes: Mapping[str, tuple[int, ...]] | None = None
) -> int:
    """Number of frames in `frames` (camera key -> (N, H, W, 3)); a ValueError naming the key if malformed."""
    if not isinstance(frames, Mapping) or not frames:
        raise ValueError(f"{name} must be a non-empty dict of camera key -> (N, H, W, 3) images")
    keys = list(image_shapes) if image_shapes is not None else list(frames)
    counts = set()
    for key in keys:
        if key not in frames:
            raise ValueError(f"{name} lacks image key {key!r}; expected keys {keys}")
        shape = tuple(frames[key].shape)
        expected = tuple(image_shapes[key]) if image_shapes is not None else shape[1:]
        if len(shape) != 4 or shape[1:] != expected or shape[-1] != 3:
            raise ValueError(f"{name}[{key!r}] has shape {shape}; expected (N, {', '.join(map(str, expected))})")
        counts.add(shape[0])
    if len(counts) != 1:
        raise ValueError(f"{name}: every camera needs the same number of frames, got "
                         f"{ {key: len(frames[key]) for key in keys} }")
    return counts.pop()


# ------------------------------------------------------------------------------------------------------ training


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """How `train_classifier` fits a `SuccessClassifier`."""

    steps: int = 1000  # gradient steps
    batch_size: int = 64  # frames per step, half positive and half negative (HIL-SERL: 256)
    lr: float = 3e-4  # Adam learning rate (HIL-SERL: 1e-4 on a frozen pretrained ResNet; from scratch 3e-4 is faster)
    augment_pad: int = 4  # random-shift padding in pixels (DrQ: 4); 0 turns augmentation off
    label_smoothing: float = 0.0  # targets y (1 - s) + s / 2; 0: off (VICE: 0.2)
    mixup_alpha: float = 0.0  # Beta(alpha, alpha) mixup of features and labels; 0: off (VICE: 1)
    gradient_penalty: float = 0.0  # weight of the (||grad|| - 1)^2 penalty between the classes; 0: off (VICE: 10)
    val_fraction: float = 0.1  # share of each set held out for validation when no validation set is given
    eval_every: int = 200  # steps between validation passes (and at the end)
    threshold: float = 0.5  # probability at or above which a frame counts as a success in precision/recall
    seed: int = 0  # seeds the weights, the batches, the augmentation and the validation split

    def __post_init__(self) -> None:
        for name in ("steps", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2 or self.batch_size % 2:
            raise ValueError(
                f"batch_size must be even and >= 2 (half positives, half negatives), got {self.batch_size}"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.augment_pad < 0:
            raise ValueError(f"augment_pad must be >= 0, got {self.augment_pad}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.mixup_alpha < 0 or self.gradient_penalty < 0:
            raise ValueError(
                f"mixup_alpha and gradient_penalty must be >= 0, got {self.mixup_alpha}, {self.gradient_penalty}"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


def split_frames(frames: Frames, fraction: float, rng: np.random.Generator) -> tuple[Frames, Frames]:
    """(train, validation): a random `fraction` of the frames held out, at least one frame kept for training."""
    count = check_frames(frames, "frames")
    held = min(int(count * fraction), count - 1)
    order = rng.permutation(count)
    return ({key: value[order[held:]] for key, value in frames.items()},
            {key: value[order[:held]] for key, value in frames.items()})


def train_classifier(
    positives: Frames,
    negatives: Frames,
    config: ClassifierTrainConfig = ClassifierTrainConfig(),
    network: ClassifierConfig | None = None,
    validation: tuple[Frames, Frames] | None = None,
    device: str | torch.device = "cpu",
    log_dir: str | os.PathLike | None = None,
    verbose: bool = True,
) -> SuccessClassifier:
    """Fit a classifier of success (positives) vs not (negatives); returns it in eval mode with `.metrics` set.

    `network` defaults to `ClassifierConfig` with the cameras and shapes of `positives`. `validation` is
    (positives, negatives); without it `config.val_fraction` of each set is held out at random (consecutive
    frames of a rollout are near-duplicates, so a held-out rollout gives the honest figure). Validation
    precision/recall are printed (verbose) and logged to TensorBoard under `log_dir`.
    """
    device = torch.device(device)
    network = network or ClassifierConfig({key: tuple(value.shape[1:]) for key, value in positives.items()})
    check_frames(positives, "positives", network.image_shapes)
    check_frames(negatives, "negatives", network.image_shapes)
    positives = {key: positives[key] for key in network.image_shapes}
    negatives = {key: negatives[key] for key in network.image_shapes}
    if validation is None and config.val_fraction > 0:
        rng = np.random.default_rng(config.seed)
        positives, val_pos = split_frames(positives, config.val_fraction, rng)
        negatives, val_neg = split_frames(negatives, config.val_fraction, rng)
        held_out = min(len(next(iter(val_pos.values()))), len(next(iter(val_neg.values()))))
        validation = (val_pos, val_neg) if held_out else None
    classifier = SuccessClassifier(network, seed=config.seed).to(device)
    pos = {key: torch.as_tensor(value, device=device) for key, value in positives.items()}
    neg = {key: torch.as_tensor(value, device=device) for key, value in negatives.items()}
    n_pos, n_neg = len(next(iter(pos.values()))), len(next(iter(neg.values())))
    generator = torch.Generator(device).manual_seed(config.seed)
    dropout_rng = torch.Generator().manual_seed(config.seed + 1)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=config.lr)
    writer = None
    if log_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(log_dir))
    keys, half = list(network.image_shapes), config.batch_size // 2
    bar = tqdm(range(1, config.steps + 1), desc="train-classifier", unit="step", disable=not verbose)
    classifier.train()
    for step in bar:
        batch = []
        for frames, count in ((pos, n_pos), (neg, n_neg)):
            index = torch.randint(count, (half,), generator=generator, device=device)
            batch.append(augment_observations({key: frames[key][index] for key in keys}, keys,
                                              config.augment_pad, generator))
        with seeded_dropout(has_dropout(classifier), dropout_rng, device):
            loss, info = classifier_loss(classifier, batch[0], batch[1], generator, config.label_smoothing,
                                         config.mixup_alpha, config.gradient_penalty)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 10 == 0 or step == config.steps:
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            if writer is not None:
                for name, value in info.items():
                    writer.add_scalar(f"train/{name}", float(value), step)
        if validation is not None and (step % config.eval_every == 0 or step == config.steps):
            classifier.metrics = evaluate_classifier(classifier, *validation, threshold=config.threshold)
            classifier.train()
            if verbose:
                bar.write(format_metrics(step, classifier.metrics))
            if writer is not None:
                for name in ("precision", "recall", "accuracy"):
                    writer.add_scalar(f"val/{name}", classifier.metrics[name], step)
    if writer is not None:
        writer.close()
    return classifier.eval()


def format_metrics(step: int, metrics: Mapping[str, float]) -> str:
    return (
        f"step {step}: validation precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f}, "
        f"accuracy {metrics['accuracy']:.3f} ({metrics['positives']} positives, {metrics['negatives']} negatives; "
        f"{metrics['false_positives']} false positives, {metrics['false_negatives']} false negatives)"
    )


# -------------------------------------------------------------------------------------------------------- data


def image_keys_in(space: Any) -> list[str]:
    """The camera keys of a Dict observation space: its uint8 (H, W, 3) entries."""
    spaces = getattr(space, "spaces", None)
    if not isinstance(spaces, Mapping):
        raise ValueError(f"a classifier needs dict observations with camera images, got a {type(space).__name__} space")
    return [key for key, sub in spaces.items() if sub.dtype == np.uint8 and len(sub.shape) == 3 and sub.shape[-1] == 3]


def load_frames(path: str | os.PathLike, image_keys: Sequence[str] | None = None, label: bool | None = None) -> Frames:
    """Camera frames from a Minari dataset (`serl_envs.demos`, e.g. from `serl record-demos`) or a folder of PNGs.

    Minari: every observation of every episode (failed ones too); with `label=True` only the frames whose recorded
    `info["is_success"]` is True, with `label=False` only those where it is False. `label=None`, or a dataset
    that did not record the flag, takes every frame (SERL's convention: a positives file is all successes).
    Folder: one subfolder per camera with the same file names (`front/0001.png`, `wrist/0001.png`), or the PNGs
    directly in the folder when a single camera key is asked for. `image_keys` defaults to every camera.
    """
    path = Path(path)
    if (path / "data" / "metadata.json").exists() or (path / "metadata.json").exists():
        return _minari_frames(path, image_keys, label)
    if path.is_dir():
        return _png_frames(path, image_keys)
    raise FileNotFoundError(f"no dataset at {path}: expected a Minari dataset folder or a folder of PNG images")


def _minari_frames(path: Path, image_keys: Sequence[str] | None, label: bool | None) -> Frames:
    from serl_envs.demos import open_demos

    dataset = open_demos(path)
    cameras = image_keys_in(dataset.observation_space)
    keys = list(image_keys) if image_keys is not None else cameras
    for key in keys:
        if key not in cameras:
            raise ValueError(f"{path} has no camera {key!r}; its cameras are {cameras}")
    parts: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    for episode in dataset.iterate_episodes():
        flags = episode.infos.get("is_success") if label is not None else None
        for key in keys:
            images = np.asarray(episode.observations[key])
            if flags is not None:
                images = images[np.asarray(flags, dtype=bool) == label]
            parts[key].append(images)
    frames = {key: np.concatenate(chunks) for key, chunks in parts.items()}
    if not all(len(value) for value in frames.values()):
        which = {True: "success frames", False: "non-success frames", None: "frames"}[label]
        raise ValueError(f"{path} holds no {which}")
    return frames


def _read_png(file: Path) -> np.ndarray:
    import imageio.v2 as imageio

    image = np.asarray(imageio.imread(file))
    if image.ndim != 3 or image.shape[-1] not in (3, 4) or image.dtype != np.uint8:
        raise ValueError(f"{file} must be an 8-bit RGB(A) image, got shape {image.shape} and dtype {image.dtype}")
    return image[..., :3]


def _png_frames(path: Path, image_keys: Sequence[str] | None) -> Frames:
    subfolders = sorted(child.name for child in path.iterdir() if child.is_dir())
    keys = list(image_keys) if image_keys is not None else subfolders
    if keys and all((path / key).is_dir() for key in keys):
        folders = {key: path / key for key in keys}
    elif image_keys is not None and len(keys) == 1:
        folders = {keys[0]: path}
    else:
        raise ValueError(
            f"{path} needs one subfolder of PNGs per camera ({path}/<camera>/*.png, the same names in each)"
            + (f"; missing subfolders for {[key for key in keys if not (path / key).is_dir()]}" if keys else "")
        )
    names = None
    frames = {}
    for key, folder in folders.items():
        files = sorted(folder.glob("*.png"))
        if not files:
            raise ValueError(f"{folder} holds no .png images")
        if names is None:
            names = [file.name for file in files]
        elif [file.name for file in files] != names:
            raise ValueError(f"{folder} and {folders[keys[0]]} must hold PNGs with the same file names")
        images = [_read_png(file) for file in files]
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise ValueError(f"the images of {folder} must share one size, got {sorted(shapes)}")
        frames[key] = np.stack(images)
    return frames


def load_frame_sets(
    paths: Sequence[str | os.PathLike], image_keys: Sequence[str] | None, label: bool | None
) -> Frames:
    """`load_frames` of several datasets, concatenated (they must share cameras and image sizes)."""
    sets = [load_frames(path, image_keys, label) for path in paths]
    keys = list(sets[0])
    for path, frames in zip(paths, sets, strict=True):
        if list(frames) != keys:
            raise ValueError(f"{path} has cameras {list(frames)}, but {paths[0]} has {keys}")
    return {key: np.concatenate([frames[key] for frames in sets]) for key in keys}


# ---------------------------------------------------------------------------------------------------------- CLI


def main_train_classifier(argv: Sequence[str] | None = None) -> int:
    """`serl train-classifier --positives DATASET --negatives DATASET --out clf.pt`."""
    from serl_agents.config import add_dataclass_flags

    parser = argparse.ArgumentParser(
        prog="serl train-classifier",
        description="Train a success classifier on camera images (the learned reward of RewardClassifierWrapper).",
    )
    parser.add_argument("--positives", type=Path, nargs="+", required=True,
                        help="Minari datasets (their frames flagged is_success) or folders of PNGs of successes")
    parser.add_argument("--negatives", type=Path, nargs="+", required=True,
                        help="Minari datasets (their frames not flagged is_success) or folders of PNGs of failures")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint file to write, e.g. clf.pt")
    parser.add_argument("--val-positives", type=Path, nargs="+", default=None, help="held-out positives")
    parser.add_argument("--val-negatives", type=Path, nargs="+", default=None, help="held-out negatives")
    parser.add_argument("--image-keys", default=None, help="comma-separated cameras (default: every camera)")
    parser.add_argument("--all-frames", action="store_true",
                        help="take every frame of a Minari dataset, ignoring its recorded is_success flags")
    parser.add_argument("--encoder", choices=sorted(ENCODERS), default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--log-dir", type=Path, default=None, help="TensorBoard log folder")
    add_dataclass_flags(parser, ClassifierTrainConfig)
    args = parser.parse_args(argv)
    if (args.val_positives is None) != (args.val_negatives is None):
        parser.error("--val-positives and --val-negatives go together")
    names = {f.name for f in dataclasses.fields(ClassifierTrainConfig)}
    try:
        config = ClassifierTrainConfig(**{key: value for key, value in vars(args).items() if key in names})
    except ValueError as err:
        parser.error(str(err))
    keys = args.image_keys.split(",") if args.image_keys else None
    positive, negative = (None, None) if args.all_frames else (True, False)
    positives = load_frame_sets(args.positives, keys, positive)
    negatives = load_frame_sets(args.negatives, list(positives), negative)
    validation = None
    if args.val_positives is not None:
        validation = (load_frame_sets(args.val_positives, list(positives), positive),
                      load_frame_sets(args.val_negatives, list(positives), negative))
    shapes = {key: tuple(value.shape[1:]) for key, value in positives.items()}
    print(f"{len(next(iter(positives.values())))} positive and {len(next(iter(negatives.values())))} negative "
          f"frames; cameras {shapes}")
    classifier = train_classifier(positives, negatives, config, ClassifierConfig(shapes, encoder=args.encoder),
                                  validation, args.device, args.log_dir)
    classifier.save(args.out)
    summary = f"; {format_metrics(config.steps, classifier.metrics)}" if classifier.metrics else ""
    print(f"saved {args.out}{summary}")
    return 0
