"""ThresholdDiceLoss: the soft Dice of a thresholded class (bone) between prediction and target."""

from __future__ import annotations

import pytest
import torch

from custom.losses import ThresholdDiceLoss


def _skull(size: int = 32) -> torch.Tensor:
    """A [-1, 1] image: air -1, a disc of soft tissue 0 and a ring of bone +1 around it."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    r = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2).sqrt()
    image = torch.full((size, size), -1.0)
    image[r < 12] = 1.0
    image[r < 9] = 0.0
    return image[None, None]


def test_matching_class_costs_nothing_and_missing_class_costs_everything():
    target = _skull()
    loss = ThresholdDiceLoss(threshold=0.5, temperature=0.02)  # bone 25 τ above t, soft tissue 25 τ below
    assert loss(target, target).item() == pytest.approx(0.0, abs=1e-4)
    no_bone = target.clamp(max=0.0)  # the skull predicted as soft tissue
    assert loss(no_bone, target).item() == pytest.approx(1.0, abs=1e-4)


def test_gradient_only_near_the_threshold():
    """A bone pixel just below the threshold is pushed up; soft tissue far below it gets (almost) no gradient."""
    target = _skull()
    pred = target.clone()
    pred[target == 1.0] = 0.88  # the skull just below t = 0.9
    pred.requires_grad_(True)
    ThresholdDiceLoss(threshold=0.9, temperature=0.02)(pred, target).backward()
    assert pred.grad[target == 1.0].max() < 0  # descent raises them
    assert pred.grad[target == 0.0].abs().max() < 1e-6 * pred.grad[target == 1.0].abs().max()


def test_mask_leaves_out_what_is_outside():
    target = _skull()
    pred = target.clone()
    pred[..., :, 16:] = 0.0  # the right half of the skull is missed
    mask = torch.zeros_like(target)
    mask[..., :, :16] = 1.0
    loss = ThresholdDiceLoss(threshold=0.5)
    assert loss(pred, target).item() > 0.3
    assert loss(pred, target, mask=mask).item() == pytest.approx(0.0, abs=1e-4)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="temperature"):
        ThresholdDiceLoss(threshold=0.9, temperature=0.0)
    with pytest.raises(ValueError, match="differ"):
        ThresholdDiceLoss(threshold=0.9)(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
