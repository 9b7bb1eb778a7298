"""random_shift / augment_observations: exact bounded integer shifts, per-sample, seeded."""

import numpy as np
import pytest
import torch

from serl_agents.augment import augment_observations, random_shift

H, W, PAD = 20, 24, 4


def coordinate_images(batch: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) whose pixels hold (row, col, sample): every pixel of the batch is unique."""
    rows = torch.arange(H).view(1, H, 1).expand(batch, H, W)
    cols = torch.arange(W).view(1, 1, W).expand(batch, H, W)
    samples = torch.arange(batch).view(batch, 1, 1).expand(batch, H, W)
    return torch.stack([rows, cols, samples], dim=-1).to(torch.uint8)


def recover_shifts(images: torch.Tensor, shifted: torch.Tensor, pad: int) -> torch.Tensor:
    """(B, 2) shifts (dy, dx) read from the interior and checked to explain the whole output exactly."""
    shifts = []
    for image, out in zip(images, shifted, strict=True):
        interior = out[pad : H - pad, pad : W - pad].long()
        dy = interior[..., 0] - torch.arange(pad, H - pad).view(-1, 1)
        dx = interior[..., 1] - torch.arange(pad, W - pad).view(1, -1)
        assert (dy == dy[0, 0]).all() and (dx == dx[0, 0]).all(), "interior is not one rigid shift"
        dy, dx = int(dy[0, 0]), int(dx[0, 0])
        rows = (torch.arange(H) + dy).clamp(0, H - 1)
        cols = (torch.arange(W) + dx).clamp(0, W - 1)
        assert torch.equal(out, image[rows][:, cols]), "output is not the edge-padded image shifted"
        shifts.append((dy, dx))
    return torch.tensor(shifts)


def test_each_output_is_the_input_shifted_by_at_most_pad():
    images = coordinate_images(64)
    shifted = random_shift(images, PAD, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    shifts = recover_shifts(images, shifted, PAD)
    assert shifts.abs().max() <= PAD


def test_shifts_cover_the_whole_range_and_differ_across_samples():
    images = coordinate_images(400)
    shifts = recover_shifts(images, random_shift(images, PAD, torch.Generator().manual_seed(1)), PAD)
    for axis in range(2):
        assert set(shifts[:, axis].tolist()) == set(range(-PAD, PAD + 1))
    assert len({tuple(s) for s in shifts.tolist()}) > 40


def test_same_seed_same_output_other_seed_differs():
    images = coordinate_images(16)
    first = random_shift(images, PAD, torch.Generator().manual_seed(7))
    again = random_shift(images, PAD, torch.Generator().manual_seed(7))
    other = random_shift(images, PAD, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_float_images_keep_dtype_and_values_are_copied_not_interpolated():
    images = torch.rand(8, H, W, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    shifted = random_shift(images, PAD, torch.Generator().manual_seed(0))
    assert shifted.dtype == torch.float64 and shifted.shape == images.shape
    assert torch.isin(shifted, images).all()


def test_pad_zero_is_identity_and_numpy_and_extra_batch_dims_are_accepted():
    images = coordinate_images(6)
    assert torch.equal(random_shift(images, 0), images)
    from_numpy = random_shift(images.numpy(), PAD, torch.Generator().manual_seed(3))
    assert torch.equal(from_numpy, random_shift(images, PAD, torch.Generator().manual_seed(3)))
    stacked = random_shift(images.view(2, 3, H, W, 3), PAD, torch.Generator().manual_seed(3))
    assert stacked.shape == (2, 3, H, W, 3)
    assert torch.equal(stacked.view(6, H, W, 3), from_numpy)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"^images must be \(batch, H, W, C\), got shape \(20, 24, 3\)$"):
        random_shift(torch.zeros(H, W, 3))
    with pytest.raises(ValueError, match=r"^pad must be >= 0, got -1$"):
        random_shift(torch.zeros(1, H, W, 3), pad=-1)


def test_augment_observations_shifts_each_image_key_independently_and_leaves_the_rest():
    images = coordinate_images(32)
    state = np.arange(32 * 5, dtype=np.float32).reshape(32, 5)
    obs = {"front": images, "wrist": images.clone(), "state": state}
    out = augment_observations(obs, ("front", "wrist"), PAD, torch.Generator().manual_seed(0))
    assert out is not obs and set(out) == set(obs)
    assert out["state"] is state
    assert obs["front"] is images and torch.equal(obs["wrist"], images)
    front = recover_shifts(images, out["front"], PAD)
    wrist = recover_shifts(images, out["wrist"], PAD)
    assert not torch.equal(front, wrist)


def test_augment_observations_missing_key():
    obs = {"front": coordinate_images(2), "state": torch.zeros(2, 3)}
    with pytest.raises(
        ValueError, match=r"^observation lacks image key 'wrist'; it has keys \['front', 'state'\]$"
    ):
        augment_observations(obs, ["front", "wrist"])


@pytest.mark.parametrize("channels", [1, 4])
def test_any_channel_count_shifts_all_channels_together(channels):
    images = coordinate_images(32)[..., :1].expand(32, H, W, channels).contiguous()
    images[..., -1] = coordinate_images(32)[..., 1]  # last channel: the column, so both axes are recoverable
    shifted = random_shift(images, PAD, torch.Generator().manual_seed(2))
    for image, out in zip(images, shifted, strict=True):
        dy = int(out[PAD, PAD, 0]) - PAD
        dx = int(out[PAD, PAD, -1]) - PAD
        rows = (torch.arange(H) + dy).clamp(0, H - 1)
        cols = (torch.arange(W) + dx).clamp(0, W - 1)
        assert torch.equal(out, image[rows][:, cols])
