"""MESM's sparse building blocks mean what the paper means: nucleus selection keeps the smallest set of
positions with attention mass >= p, and both implementations of the convolution, batch norm and
pooling (masked dense maps; gathered sites over a rulebook) compute exactly what a sparse library
computes on the active sites (submanifold semantics), gradients included."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emoprep.train.batch import InputSpec
from emoprep.train.models.cnn import ImageCNN, channels_last
from emoprep.train.models.sparse import (MaskedBatchNorm2d, Rulebook, Sites, SiteConv2d, masked_max_pool2d, nucleus,
                                         resolve_impl)


def random_attention(rows: int, length: int, seed: int = 0) -> torch.Tensor:
    """Softmax rows in float64, so that sums in the checks below do not round across p."""
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(rows, length, generator=gen, dtype=torch.float64), dim=-1)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_nucleus_keeps_the_smallest_set_reaching_p(p: float) -> None:
    attention = random_attention(50, 36)
    kept = nucleus(attention, p)
    mass = (attention * kept).sum(dim=1)
    assert (mass >= p).all(), "the kept positions must carry mass p"
    smallest_kept = attention.masked_fill(~kept, float("inf")).amin(dim=1)
    assert (mass - smallest_kept < p).all(), "dropping the weakest kept position must fall below p"
    strongest_dropped = attention.masked_fill(kept, float("-inf")).amax(dim=1)
    assert (strongest_dropped <= smallest_kept).all(), "it keeps the top positions, not any set with mass p"


def test_nucleus_ties_are_broken_by_position_and_p_one_keeps_all() -> None:
    uniform = torch.full((2, 4), 0.25)
    assert nucleus(uniform, 0.5).tolist() == [[True, True, False, False]] * 2
    assert nucleus(uniform, 0.6).tolist() == [[True, True, True, False]] * 2
    # Equal weights out of order: the earlier position wins, run after run.
    tied = torch.tensor([[0.1, 0.3, 0.3, 0.3]])
    assert nucleus(tied, 0.5).tolist() == [[False, True, True, False]]
    attention = random_attention(5, 9)
    assert nucleus(attention, 1.0).all()
    # A row whose float32 sum rounds below 1 still keeps everything at p = 1.
    assert nucleus(torch.full((1, 7), 1 / 7), 1.0).all()


def test_nucleus_chooses_among_active_sites_only() -> None:
    attention = random_attention(8, 16)
    active = torch.rand(8, 16, generator=torch.Generator().manual_seed(1)) < 0.5
    active[:, 0] = True
    attention = torch.where(active, attention, 0.0)
    attention = attention / attention.sum(dim=1, keepdim=True)
    for p in (0.4, 1.0):
        kept = nucleus(attention, p, active)
        assert not (kept & ~active).any() and kept.any(dim=1).all()
    assert torch.equal(nucleus(attention, 1.0, active), active)


def reference_sparse_conv(conv: nn.Conv2d, x: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Submanifold convolution written out: for each active output site, the bias plus the kernel
    applied to the active sites of its 3x3 neighbourhood only; inactive outputs are not computed (0)."""
    n, _, h, w = x.shape
    out = torch.zeros(n, conv.out_channels, h, w, dtype=x.dtype)
    for b, i, j in active.nonzero().tolist():
        total = conv.bias.detach().clone()
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                y, z = i + di, j + dj
                if 0 <= y < h and 0 <= z < w and active[b, y, z]:
                    total += conv.weight.detach()[:, :, di + 1, dj + 1] @ x[b, :, y, z]
        out[b, :, i, j] = total
    return out


def test_masked_dense_conv_equals_reference_sparse_conv() -> None:
    torch.manual_seed(0)
    conv = SiteConv2d(3, 4).double()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    active = torch.rand(2, 6, 5) < 0.4
    active[1] = False
    active[1, 2, 3] = True  # an isolated site: only its own centre tap contributes
    garbage = torch.where(active.unsqueeze(1), x, 1e3 * torch.randn_like(x))
    with torch.no_grad():
        got = conv(garbage, active)
    torch.testing.assert_close(got, reference_sparse_conv(conv, x, active), atol=1e-10, rtol=0)
    assert conv.last_sites == active.sum() and conv.last_total_sites == 2 * 6 * 5
    with torch.no_grad():
        torch.testing.assert_close(conv(x, torch.ones_like(active)), conv(x), atol=1e-12, rtol=0)


def test_masked_batch_norm_uses_active_sites_only() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 5) * 2 + 1
    active = torch.rand(3, 5, 5) < 0.3
    norm = MaskedBatchNorm2d(4).train()
    out = norm(x * active.unsqueeze(1), active)
    sites = x.permute(0, 2, 3, 1)[active]
    expected = (sites - sites.mean(0)) / torch.sqrt(sites.var(0, unbiased=False) + norm.eps)
    torch.testing.assert_close(out.permute(0, 2, 3, 1)[active], expected, atol=1e-5, rtol=0)
    assert out.permute(0, 2, 3, 1)[~active].abs().max() == 0
    torch.testing.assert_close(norm.running_mean, 0.1 * sites.mean(0))
    torch.testing.assert_close(norm.running_var, 0.9 + 0.1 * sites.var(0, unbiased=True))

    dense, masked = nn.BatchNorm2d(4), MaskedBatchNorm2d(4)
    all_sites = torch.ones(3, 5, 5, dtype=torch.bool)
    torch.testing.assert_close(masked(x, all_sites), dense(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(masked.running_var, dense.running_var)
    masked.eval(), dense.eval()
    torch.testing.assert_close(masked(x, all_sites), dense(x), atol=1e-5, rtol=0)

    one = torch.zeros(3, 5, 5, dtype=torch.bool)
    one[0, 2, 2] = True
    assert torch.isfinite(MaskedBatchNorm2d(4).train()(x, one)).all(), "one kept site must not crash training"


def test_masked_max_pool_takes_the_max_over_active_sites() -> None:
    x = -torch.arange(1.0, 17.0).view(1, 1, 4, 4)  # all negative: a zero at an inactive site would win
    active = torch.zeros(1, 4, 4, dtype=torch.bool)
    active[0, 0, 1] = active[0, 1, 0] = active[0, 3, 3] = True
    out, pooled = masked_max_pool2d(x * active, active)
    assert pooled.tolist() == [[[True, False], [False, True]]]
    assert out.squeeze().tolist() == [[-2.0, 0.0], [0.0, -16.0]]


def sites_of(x: torch.Tensor, active: torch.Tensor) -> Sites:
    """The gather path's form of a masked map."""
    n, _, h, w = x.shape
    index = active.flatten().nonzero().squeeze(1)
    return Sites(x.permute(0, 2, 3, 1).reshape(n * h * w, -1)[index], index, (n, h, w))


def random_active(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """About 40 % active; image 1 a single isolated site, image 2 (when there) none at all."""
    active = torch.rand(n, h, w, generator=torch.Generator().manual_seed(seed)) < 0.4
    active[1] = False
    active[1, h // 2, w // 2] = True
    if n > 2:
        active[2] = False
    return active


@pytest.mark.parametrize(("h", "w"), [(6, 5), (8, 8), (7, 9)])
def test_rulebook_conv_equals_reference_and_masked_conv_with_gradients(h: int, w: int) -> None:
    torch.manual_seed(0)
    conv = SiteConv2d(3, 4).double()
    x = torch.randn(3, 3, h, w, dtype=torch.float64)
    active = random_active(3, h, w, seed=h * w)
    sites = sites_of(x, active)
    features = sites.features.clone().requires_grad_(True)
    rules = Rulebook(sites)
    got = conv.forward_sites(features, rules)
    assert conv.last_sites == int(active.sum()) and conv.last_total_sites == 3 * h * w
    expected = reference_sparse_conv(conv, x, active)
    torch.testing.assert_close(sites.with_features(got).to_dense(), expected, atol=1e-10, rtol=0)

    # Gradients of input, weight and bias against the masked path's autograd.
    upstream = torch.randn_like(got)
    got.backward(upstream)
    grads = [features.grad, conv.weight.grad, conv.bias.grad]
    conv.zero_grad()
    dense = (x * active.unsqueeze(1)).requires_grad_(True)
    masked_out = conv(dense, active)
    masked_out.backward(sites.with_features(upstream).to_dense())
    masked = [sites_of(dense.grad, active).features, conv.weight.grad, conv.bias.grad]
    for a, b in zip(grads, masked):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    assert torch.autograd.gradcheck(lambda f: conv.forward_sites(f, rules), (features.detach().requires_grad_(True),))


@pytest.mark.parametrize(("h", "w"), [(6, 6), (7, 9)])
def test_site_pooling_equals_masked_pooling_with_gradients(h: int, w: int) -> None:
    x = torch.randn(3, 4, h, w, dtype=torch.float64)
    active = random_active(3, h, w, seed=1)
    dense = (x * active.unsqueeze(1)).requires_grad_(True)
    expected, pooled = masked_max_pool2d(dense, active)
    sites = sites_of(x, active)
    features = sites.features.clone().requires_grad_(True)
    got = sites.with_features(features).max_pool()
    assert got.shape == (3, h // 2, w // 2)
    assert torch.equal(got.mask(), pooled), "a pooled site is active when any site under it is (floor at odd sizes)"
    torch.testing.assert_close(got.to_dense(), expected, atol=0, rtol=0)
    upstream = torch.randn_like(got.features)
    got.features.backward(upstream)
    expected.backward(got.with_features(upstream).to_dense())
    torch.testing.assert_close(features.grad, sites_of(dense.grad, active).features, atol=0, rtol=0)


def test_site_batch_norm_equals_masked_batch_norm() -> None:
    x = torch.randn(3, 4, 6, 6) * 2 + 1
    active = random_active(3, 6, 6, seed=2)
    masked, gathered = MaskedBatchNorm2d(4).train(), MaskedBatchNorm2d(4).train()
    out = masked(x * active.unsqueeze(1), active)
    torch.testing.assert_close(sites_of(out, active).features, gathered.forward_sites(sites_of(x, active).features))
    torch.testing.assert_close(masked.running_var, gathered.running_var)


def test_no_image_at_all_passes_through_every_site_operation() -> None:
    """A batch without a single face still runs the CNN (every parameter needs a gradient)."""
    empty = Sites(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), (0, 6, 6))
    conv, norm = SiteConv2d(3, 4), MaskedBatchNorm2d(4).train()
    out = norm.forward_sites(conv.forward_sites(empty.features, Rulebook(empty)))
    assert out.shape == (0, 4) and empty.with_features(out).max_pool().to_dense().shape == (0, 4, 3, 3)
    assert torch.equal(norm.running_mean, torch.zeros(4))


def test_auto_gathers_on_cpu_below_p_0_8_and_masks_elsewhere() -> None:
    assert resolve_impl("auto", "cpu", 0.5) == "gather" and resolve_impl("auto", "cpu", 0.7) == "gather"
    assert resolve_impl("auto", "cpu", 0.9) == "masked" and resolve_impl("auto", "cuda", 0.5) == "masked"
    assert resolve_impl("masked", "cpu", 0.5) == "masked" and resolve_impl("gather", "cpu", 0.9) == "gather"


@pytest.mark.parametrize("channels, column", [(1, "logmel"), (3, "face_crops")])
@pytest.mark.parametrize("training", [False, True])
def test_cnn_runs_channels_last_with_the_values_of_the_textbook_stem(channels: int, column: str,
                                                                     training: bool) -> None:
    """The CNN's speed-ups change no value: channels-last memory (canonical strides even for one
    channel, so the first convolution answers channels-last) and the stem's max-pool before its ReLU
    give the features and gradients of conv -> BN -> ReLU -> pool in the default layout."""
    torch.manual_seed(0)
    cnn = ImageCNN(InputSpec("m", "images", column, image_shape=(channels, 32, 32)), 0.25).double().train(training)
    x = torch.randn(4, channels, 32, 32, dtype=torch.float64)
    conv, bn = cnn.stem[0], cnn.stem[1]
    textbook = nn.Sequential(conv, bn, nn.ReLU(), nn.MaxPool2d(2))

    inputs = channels_last(x)
    assert inputs.stride(1) == 1, "channels-last strides, even for one channel"
    stem = cnn.stem(inputs)
    assert stem.is_contiguous(memory_format=torch.channels_last)
    ours = cnn.low(stem).square().sum()
    theirs = cnn.low(textbook(x.contiguous())).square().sum()
    assert torch.allclose(ours, theirs, rtol=1e-10)
    params = list(cnn.stem.parameters())
    for a, b in zip(torch.autograd.grad(ours, params), torch.autograd.grad(theirs, params)):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)
