"""DrQ image augmentation: random shifts, as SERL's `batched_random_crop(padding=4)`.

Pad each image by repeating its edge pixels, then crop back to the original size at a random
offset: an exact integer shift of up to `pad` pixels per axis with the border smeared. SERL applies it
to observations and next observations before every critic/actor update; it is the "Aug" in DrQ and
what lets pixel-based SAC learn from few samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor


def random_shift(
    images: Tensor | np.ndarray, pad: int = 4, generator: torch.Generator | None = None
) -> Tensor:
    """Shift each (H, W, C) image of `images` (batch..., H, W, C) by its own random (dy, dx) in [-pad, pad].

    Equivalent to edge ("replicate") padding by `pad` and a random crop back to (H, W), but done as one
    gather with clamped indices: no padded copy, no loop over the batch, any dtype, pixels copied
    exactly. Offsets are drawn with `generator` (on its device) and used on the images' device.
    """
    images = torch.as_tensor(images)
    if images.ndim < 4:
        raise ValueError(f"images must be (batch, H, W, C), got shape {tuple(images.shape)}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    batch_shape, (height, width, channels) = images.shape[:-3], images.shape[-3:]
    flat = images.reshape(-1, height, width, channels)
    size = flat.shape[0]
    device = images.device
    draw_device = generator.device if generator is not None else device
    offsets = (
        torch.randint(0, 2 * pad + 1, (2, size), generator=generator, device=draw_device).to(device) - pad
    )
    rows = (torch.arange(height, device=device) + offsets[0, :, None]).clamp_(0, height - 1)
    cols = (torch.arange(width, device=device) + offsets[1, :, None]).clamp_(0, width - 1)
    index = torch.arange(size, device=device)[:, None, None]
    shifted = flat[index, rows[:, :, None], cols[:, None, :]]
    return shifted.reshape(*batch_shape, height, width, channels)


def augment_observations(
    obs: Mapping[str, Any],
    image_keys: Iterable[str],
    pad: int = 4,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """A new dict with each of `image_keys` randomly shifted (independent offsets per key and sample).

    Other keys (e.g. "state") are passed through untouched; `obs` itself is not modified. SERL's
    `data_augmentation_fn` reuses one PRNG key for every camera, so its cameras shift together;
    independent shifts per camera are the slightly stronger augmentation chosen here.
    """
    if isinstance(image_keys, str):
        image_keys = (image_keys,)
    out = dict(obs)
    for key in image_keys:
        if key not in obs:
            raise ValueError(f"observation lacks image key {key!r}; it has keys {list(obs)}")
        out[key] = random_shift(obs[key], pad, generator)
    return out
