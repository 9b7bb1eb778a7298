"""VICE: a success classifier trained online during DrQ training, whose output is the RL reward.

Fu et al. 2018 (Variational Inverse Control with Events), as SERL's `VICEAgent` runs it. Positives are goal
examples (images of the task done, given once); negatives are next observations from the replay buffer (what the
policy reaches). The classifier takes one gradient step per learner step, so as the policy's states come closer to
the goals it has to find finer differences, and its reward keeps pointing at the goal. Unregularised, that game
collapses: the classifier separates the two sets perfectly, saturates, and its reward carries no signal. SERL uses
three regularisers at once, and so do the defaults here (`VICEConfig`):

- label smoothing 0.2: targets 0.9 / 0.1 instead of 1 / 0, so the logits stay finite;
- mixup (alpha 1) of the encoder features and labels between random pairs of the batch;
- a gradient penalty of weight 10: (||d logit / d features|| - 1)^2 at random points between the features of
  goal and replay frames (WGAN-GP, interpolating between the two halves of the batch).

(`classifier_loss` in `serl_agents/classifier.py` computes all three.) The reward of a transition is the
classifier's output on its next observation: `1{p >= threshold}` (SERL's) or `p`. The classifier has its own
encoders, separate from the agent's, and never sees the env's reward.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from serl_agents.augment import augment_observations
from serl_agents.checkpoint import atomic_save
from serl_agents.classifier import (
    ClassifierConfig,
    Frames,
    SuccessClassifier,
    check_frames,
    classifier_loss,
    load_frame_sets,
)
from serl_agents.sac import has_dropout, seeded_dropout

FORMAT = "serl_agents.vice/1"
REWARDS = ("binary", "probability")


@dataclass(frozen=True)
class VICEConfig:
    """The VICE classifier and its online updates; defaults follow SERL's `make_vice_agent` / `update_vice`."""

    encoder: str = "small"  # a `make_encoder` name for the classifier's own encoders (SERL: the agent's type)
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to make_encoder
    hidden_dim: int = 256  # the head's hidden width (SERL: MLP [256])
    dropout: float = 0.1  # the head's dropout (SERL: 0.1)
    lr: float = 3e-4  # Adam learning rate (SERL: 3e-4)
    batch_size: int = 64  # replay frames per update, plus as many goal examples (SERL: the learner batch)
    augment_pad: int = 4  # random shift of both goal and replay frames (SERL: random crop, pad 4)
    label_smoothing: float = 0.2  # targets y (1 - s) + s / 2 (SERL: 0.2)
    mixup_alpha: float = 1.0  # Beta(alpha, alpha) mixup of features and labels; 0: off (SERL: 1)
    gradient_penalty: float = 10.0  # weight of the gradient penalty; 0: off (SERL: 10)
    reward: str = "binary"  # binary: 1 if p >= threshold else 0 (SERL) | probability: p
    threshold: float = 0.5  # success threshold of the binary reward (SERL: 0.5)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
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
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {list(REWARDS)}, got {self.reward!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


class VICE:
    """The online classifier: `update(replay_next_obs)` one step, `rewards(next_obs)`, or both via `relabel(batch)`.

    Args:
        goal_examples: camera key -> (N, H, W, 3) uint8 images of the task done (the classifier reads these keys).
        config: see `VICEConfig`.
        device: where the classifier and the goal examples live.
        seed: seeds the weights and every random draw (batches, shifts, mixup, dropout).
    """

    def __init__(
        self,
        goal_examples: Frames,
        config: VICEConfig = VICEConfig(),
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        self.device = torch.device(device)
        shapes = {key: tuple(value.shape[1:]) for key, value in goal_examples.items()}
        self.num_goals = check_frames(goal_examples, "goal_examples")
        if self.num_goals == 0:
            raise ValueError("goal_examples holds no images; VICE needs examples of the task done")
        self.config = config
        network = ClassifierConfig(shapes, config.encoder, config.encoder_kwargs, config.hidden_dim, config.dropout)
        self.classifier = SuccessClassifier(network, seed=seed).to(self.device)
        self.goals = {key: torch.as_tensor(value, device=self.device) for key, value in goal_examples.items()}
        self.optimizer = torch.optim.Adam(self.classifier.parameters(), lr=config.lr)
        self.rngs = {
            "train": torch.Generator(self.device).manual_seed(seed),
            "dropout": torch.Generator().manual_seed(seed + 1),
        }
        self.step = 0

    @property
    def image_keys(self) -> list[str]:
        return list(self.classifier.image_shapes)

    def loss(self, negatives: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """The regularised BCE of `negatives` (replay frames; a random `batch_size` of them when there are more) vs
        as many random goal examples, both randomly shifted; draws from the VICE generators.

        The negatives are drawn from the whole batch, not its first rows: a 50/50 demo/online batch holds its demo
        rows first, and online frames (what the policy actually reaches) are the negatives VICE exists for."""
        cfg, keys = self.config, self.image_keys
        images, _ = self.classifier.images(negatives)
        available = len(images[keys[0]])
        count = min(cfg.batch_size, available)
        generator = self.rngs["train"]
        index = torch.randint(self.num_goals, (count,), generator=generator, device=self.device)
        goals = {key: self.goals[key][index] for key in keys}
        rows = torch.randperm(available, generator=generator, device=generator.device)[:count].to(self.device)
        replay = {key: images[key][rows] for key in keys}
        goals = augment_observations(goals, keys, cfg.augment_pad, self.rngs["train"])
        replay = augment_observations(replay, keys, cfg.augment_pad, self.rngs["train"])
        return classifier_loss(self.classifier, goals, replay, self.rngs["train"], cfg.label_smoothing,
                               cfg.mixup_alpha, cfg.gradient_penalty)

    def update(self, negatives: Mapping[str, Any]) -> dict[str, float]:
        """One Adam step on `loss(negatives)`; returns its terms as floats ("vice/bce", "vice/grad_norm", ...)."""
        self.classifier.train()
        with seeded_dropout(has_dropout(self.classifier), self.rngs["dropout"], self.device):
            loss, info = self.loss(negatives)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return {f"vice/{name}": float(value.detach()) for name, value in info.items()}

    @torch.no_grad()
    def rewards(self, observations: Mapping[str, Any]) -> Tensor:
        """The RL reward of reaching `observations`: 1{p >= threshold} or p, float32 of the batch's shape."""
        probability = self.classifier.predict_proba(observations)
        if self.config.reward == "binary":
            return (probability >= self.config.threshold).float()
        return probability.float()

    def relabel(self, batch: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
        """SERL's VICE learner step: update the classifier with the batch's next observations as negatives, then
        replace the batch's rewards by the classifier's on them. Returns (new batch, info)."""
        info = self.update(batch["next_observations"])
        rewards = self.rewards(batch["next_observations"])
        info["vice/reward"] = float(rewards.mean())
        return {**batch, "rewards": rewards}, info

    def save(self, path: str | os.PathLike) -> None:
        """Classifier, optimizer, random streams and step (not the goal examples: they come from their dataset)."""
        atomic_save(
            {
                "format": FORMAT,
                "config": json.dumps(asdict(self.config)),
                "classifier": self.classifier.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rngs": {name: rng.get_state() for name, rng in self.rngs.items()},
                "step": self.step,
            },
            path,
        )

    def load_state(self, path: str | os.PathLike) -> None:
        """Continue from `save`'s file: same classifier, optimizer moments, random streams and step."""
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a VICE checkpoint (format {FORMAT!r})")
        saved = VICEConfig(**json.loads(payload["config"]))
        if saved != self.config:
            raise ValueError(f"{path} was saved with {saved}, this VICE has {self.config}")
        self.classifier.load_state_dict(payload["classifier"])
        self.optimizer.load_state_dict(payload["optimizer"])
        for name, rng in self.rngs.items():
            rng.set_state(payload["rngs"][name])
        self.step = int(payload["step"])


def make_vice(
    goal_examples: str | os.PathLike | Sequence[str | os.PathLike],
    image_keys: Sequence[str],
    device: str | torch.device = "cpu",
    seed: int = 0,
    **config: Any,
) -> VICE:
    """VICE on the `image_keys` cameras, with goal examples from Minari datasets (their frames flagged
    `is_success`, e.g. `serl record-demos --device expert`) or folders of PNGs; `config` are VICEConfig fields."""
    paths = [goal_examples] if isinstance(goal_examples, (str, os.PathLike)) else list(goal_examples)
    goals = load_frame_sets(paths, list(image_keys), label=True)
    return VICE(goals, VICEConfig(**config), device, seed)
