"""Image encoders, pooling heads, pretrained-weight loading and the multi-camera encoder."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from serl_agents.nets.encoders import MultiCameraEncoder, load_pretrained, make_encoder
from serl_agents.nets.pooling import SpatialLearnedEmbeddings, SpatialSoftmax, make_pooling
from serl_agents.nets.resnet import ResNetV1, SameConv2d

SHAPE = (64, 64, 3)
POOLINGS = ("spatial_learned_embeddings", "spatial_softmax", "avg")


def images(batch: int, seed: int = 0, shape=SHAPE) -> torch.Tensor:
    return torch.randint(
        0, 256, (batch, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def build(name: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return make_encoder(name, SHAPE, **kwargs)


@pytest.mark.parametrize("name", ["small", "resnet10"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_output_shape_range_and_input_forms(name, pooling):
    encoder = build(name, pooling=pooling, bottleneck_dim=32).eval()
    x = images(3)
    features = encoder(x)
    assert encoder.output_dim == 32 and features.shape == (3, 32) and features.dtype == torch.float32
    assert features.abs().max() < 1.0  # tanh bottleneck, as SERL
    torch.testing.assert_close(encoder(x.float() / 255.0), features)  # floats in [0, 1] == uint8 / 255
    torch.testing.assert_close(encoder(x.numpy()), features)
    torch.testing.assert_close(encoder(x.view(3, 1, *SHAPE)), features.view(3, 1, 32))


def test_default_output_dim_is_serl_bottleneck():
    assert make_encoder("small").output_dim == 256


@pytest.mark.parametrize("name", ["small", "resnet10"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_gradient_reaches_every_parameter(name, pooling):
    encoder = build(name, pooling=pooling)
    encoder(images(2)).square().sum().backward()
    for key, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, key


def test_frozen_backbone_gets_no_gradient_but_the_head_does():
    encoder = build("resnet10", freeze=True)
    assert not any(p.requires_grad for p in encoder.backbone.parameters())
    encoder.backbone.requires_grad_(True)  # e.g. a later blanket requires_grad_(True) must not unfreeze it
    encoder(images(2)).sum().backward()
    assert all(p.grad is None for p in encoder.backbone.parameters())
    head = [(k, p) for k, p in encoder.named_parameters() if not k.startswith("backbone.")]
    assert head and all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in head)


def test_dropout_is_only_active_in_train_mode():
    encoder = build("small")
    x = images(4)
    assert not torch.equal(encoder(x), encoder(x))
    encoder.eval()
    assert torch.equal(encoder(x), encoder(x))


def test_encoder_follows_parameter_dtype():
    encoder = build("small", pooling="avg").double().eval()
    assert encoder(images(2)).dtype == torch.float64


def test_spatial_learned_embeddings_matches_serl_layout():
    pool = SpatialLearnedEmbeddings(channels=3, height=4, width=5, num_features=2, dropout=0.0)
    features = torch.randn(2, 3, 4, 5)
    expected = torch.stack(
        [
            torch.stack(
                [(features[:, c] * pool.kernel[:, :, c, f]).sum(dim=(1, 2)) for f in range(2)], dim=-1
            )
            for c in range(3)
        ],
        dim=1,
    ).flatten(1)  # SERL: sum over (H, W) of (B,H,W,C,1) * (1,H,W,C,F), reshaped to (B, C*F)
    torch.testing.assert_close(pool(features), expected)
    assert pool.output_dim == 6


def test_spatial_softmax_finds_a_peak():
    pool = SpatialSoftmax(channels=2, height=5, width=9, num_keypoints=2)
    with torch.no_grad():
        pool.keypoints.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    features = torch.zeros(1, 2, 5, 9)
    features[0, 0, 1, 6] = 100.0  # row 1 of 5 -> y = -0.5, col 6 of 9 -> x = 0.5
    features[0, 1, 4, 0] = 100.0  # row 4 -> y = 1, col 0 -> x = -1
    torch.testing.assert_close(pool(features), torch.tensor([[0.5, -1.0, -0.5, 1.0]]))
    assert pool.output_dim == 4


def test_same_conv_pads_like_flax():
    conv = SameConv2d(1, 1, kernel_size=3, stride=2)
    for size in (8, 9):
        x = torch.randn(1, 1, size, size)
        out = conv(x)
        assert out.shape[-1] == -(-size // 2)
        pad = (0, 1, 0, 1) if size % 2 == 0 else (1, 1, 1, 1)  # even: the extra pixel goes after
        torch.testing.assert_close(out, F.conv2d(F.pad(x, pad), conv.weight, stride=2))


@pytest.mark.parametrize("size", [(64, 64), (37, 50)])
def test_resnet_output_shape_matches_forward(size):
    net = ResNetV1(pre_pooling=True)
    assert tuple(net(torch.rand(1, 3, *size)).shape[1:]) == net.output_shape(*size)
    assert net.output_shape(128, 128) == (512, 4, 4)


def test_construction_errors():
    with pytest.raises(ValueError, match=r"^unknown encoder 'resnet18'; expected one of small, resnet10$"):
        make_encoder("resnet18")
    with pytest.raises(
        ValueError,
        match=r"^unknown pooling 'max'; expected one of spatial_learned_embeddings, spatial_softmax, avg$",
    ):
        make_pooling("max", 8, 2, 2)
    with pytest.raises(
        ValueError, match=re.escape("image_shape must be (H, W, 3) with H, W >= 1, got (64, 64, 1)")
    ):
        make_encoder("small", (64, 64, 1))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "image_shape (16, 64, 3) is too small for SmallConvNet: its feature map would be (256, 0, 3)"
        ),
    ):
        make_encoder("small", (16, 64, 3))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "ResNetV1 already averages over space (pre_pooling=False); pooling must be 'avg', got 'spatial_softmax'"
        ),
    ):
        make_encoder("resnet10", SHAPE, pre_pooling=False, pooling="spatial_softmax")
    assert make_encoder("resnet10", SHAPE, pre_pooling=False, pooling="avg").output_dim == 256


def test_small_encoder_widths_are_configurable():
    narrow = make_encoder("small", SHAPE, features=[8, 16, 24])
    convs = [m for m in narrow.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 24]
    assert narrow.backbone.output_shape(64, 64) == (24, 7, 7)
    assert narrow(images(2)).shape == (2, 256)
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in build("small").parameters())
    for bad in ([], [16, 0], [16.5]):
        with pytest.raises(
            ValueError,
            match=re.escape(f"features must be a non-empty sequence of channel counts >= 1, got {bad!r}"),
        ):
            make_encoder("small", SHAPE, features=bad)


def test_input_errors():
    encoder = build("small")
    with pytest.raises(
        ValueError, match=re.escape("images has shape (2, 32, 32, 3); expected (batch, 64, 64, 3)")
    ):
        encoder(torch.zeros(2, 32, 32, 3, dtype=torch.uint8))
    with pytest.raises(
        ValueError, match=re.escape("images has shape (64, 64, 3); expected (batch, 64, 64, 3)")
    ):
        encoder(torch.zeros(*SHAPE, dtype=torch.uint8))
    with pytest.raises(
        ValueError, match=r"^images must be uint8 or floating point in \[0, 1\], got torch.int64$"
    ):
        encoder(torch.zeros(1, *SHAPE, dtype=torch.int64))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".safetensors"])
def test_pretrained_round_trip(tmp_path, suffix):
    source, target = build("small", seed=0).eval(), build("small", seed=1).eval()
    x = images(2)
    assert not torch.equal(source(x), target(x))
    path = tmp_path / f"encoder{suffix}"
    if suffix == ".safetensors":
        save_file(source.state_dict(), str(path))
    else:
        torch.save(source.state_dict(), path)
    load_pretrained(target, str(path))
    assert torch.equal(source(x), target(x))


def test_pretrained_backbone_only_into_frozen_resnet(tmp_path):
    source, target = build("resnet10", seed=0), build("resnet10", seed=1, freeze=True)
    path = tmp_path / "resnet10.safetensors"
    save_file(source.backbone.state_dict(), str(path))
    load_pretrained(target.backbone, path)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(source.backbone(x), target.backbone(x))
    assert not any(p.requires_grad for p in target.backbone.parameters())


def test_pretrained_errors(tmp_path):
    encoder = build("small")
    missing = tmp_path / "absent.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"pretrained weights file not found: {missing}")):
        load_pretrained(encoder, missing)

    narrow = tmp_path / "narrow.pt"
    torch.save(build("small", bottleneck_dim=128).state_dict(), narrow)
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{narrow}: key 'bottleneck.weight' has shape (128, 2048) in the file but (256, 2048) in the encoder"
        ),
    ):
        load_pretrained(encoder, narrow)
    with pytest.raises(ValueError, match=re.escape("key 'bottleneck.weight' has shape (128, 2048)")):
        load_pretrained(encoder, narrow, strict=False)  # shapes must match even when not strict

    avg = tmp_path / "avg.pt"
    torch.save(build("small", pooling="avg").state_dict(), avg)
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{avg}: key 'pool.kernel' of the encoder (shape (3, 3, 256, 8)) is missing from the file"
        ),
    ):
        load_pretrained(encoder, avg)

    extra = tmp_path / "extra.pt"
    state = build("small", seed=3).state_dict()
    torch.save({**state, "extra": torch.zeros(2)}, extra)
    with pytest.raises(
        ValueError, match=re.escape(f"{extra}: key 'extra' (shape (2,)) in the file is not in the encoder")
    ):
        load_pretrained(encoder, extra)
    load_pretrained(encoder, extra, strict=False)
    assert torch.equal(encoder.bottleneck.weight, state["bottleneck.weight"])

    unrelated = tmp_path / "unrelated.pt"
    torch.save({"fc.weight": torch.zeros(1)}, unrelated)
    with pytest.raises(
        ValueError,
        match=re.escape(f"{unrelated} shares no key with the encoder (first file key 'fc.weight')"),
    ):
        load_pretrained(encoder, unrelated, strict=False)

    not_a_state_dict = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), not_a_state_dict)
    with pytest.raises(ValueError, match=re.escape(f"{not_a_state_dict} does not hold a state dict")):
        load_pretrained(encoder, not_a_state_dict)

    pickle = tmp_path / "weights.pkl"
    pickle.write_bytes(b"")
    with pytest.raises(
        ValueError,
        match=re.escape(f"unsupported weights file {pickle}: expected a .pt, .pth or .safetensors"),
    ):
        load_pretrained(encoder, pickle)


def test_multi_camera_concatenates_in_insertion_order():
    wrist = build("small", seed=0, pooling="avg", bottleneck_dim=16).eval()
    front = build("small", seed=1, pooling="spatial_softmax", bottleneck_dim=8).eval()
    encoder = MultiCameraEncoder({"wrist": wrist, "front": front})
    assert encoder.output_dim == 24 and encoder.image_keys == ("wrist", "front")
    obs = {"front": images(2, seed=1), "state": np.zeros((2, 7), np.float32), "wrist": images(2, seed=2)}
    features = encoder(obs)
    assert torch.equal(features, torch.cat([wrist(obs["wrist"]), front(obs["front"])], dim=-1))


def test_multi_camera_errors():
    with pytest.raises(ValueError, match=r"^MultiCameraEncoder needs at least one camera encoder$"):
        MultiCameraEncoder({})
    with pytest.raises(
        ValueError, match=r"^encoder for 'front' needs `image_shape` and `output_dim` attributes$"
    ):
        MultiCameraEncoder({"front": torch.nn.Linear(2, 2)})
    with pytest.raises(ValueError, match=r"^camera key 'images.front' must be non-empty and contain no '.'$"):
        MultiCameraEncoder({"images.front": build("small")})
    encoder = MultiCameraEncoder({"front": build("small"), "wrist": build("small")})
    with pytest.raises(
        ValueError, match=re.escape("observation lacks image key 'wrist'; expected keys ['front', 'wrist']")
    ):
        encoder({"front": images(1)})
    with pytest.raises(
        ValueError, match=re.escape("image 'wrist' has shape (1, 128, 128, 3); expected (batch, 64, 64, 3)")
    ):
        encoder({"front": images(1), "wrist": images(1, shape=(128, 128, 3))})
