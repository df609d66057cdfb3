"""Discriminator feature-matching loss (pix2pixHD).

Reference: T.-C. Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs",
CVPR 2018, eq. (4): ``L_FM = sum_k sum_i 1/N_i || D_k^(i)(x, y) - D_k^(i)(x, G(x)) ||_1`` over the intermediate
layers ``i`` of each discriminator scale ``k``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["feature_matching_loss"]


def _as_scales(feats: Sequence, name: str) -> list[list[torch.Tensor]]:
    if isinstance(feats, torch.Tensor) or not isinstance(feats, Sequence) or len(feats) == 0:
        raise TypeError(f"feature_matching_loss: {name} must be a non-empty list (of lists) of tensors")
    if all(isinstance(f, torch.Tensor) for f in feats):
        return [list(feats)]  # a single discriminator's output
    scales = []
    for k, scale in enumerate(feats):
        if isinstance(scale, torch.Tensor) or not isinstance(scale, Sequence) or len(scale) == 0:
            raise TypeError(f"feature_matching_loss: {name}[{k}] must be a non-empty list of tensors")
        if not all(isinstance(f, torch.Tensor) for f in scale):
            raise TypeError(f"feature_matching_loss: {name}[{k}] must contain only tensors")
        scales.append(list(scale))
    return scales


def feature_matching_loss(real_feats: Sequence, fake_feats: Sequence, include_last: bool = False) -> torch.Tensor:
    """Mean L1 distance between the discriminator features of real and fake (generated) inputs.

    Args:
        real_feats: discriminator output for the real pair, as returned by ``MultiScaleDiscriminator.forward`` (a
            list over scales of lists of feature maps, logits last) or by one MONAI ``PatchDiscriminator`` (a list
            of feature maps, logits last). Detached here: the loss only trains the generator.
        fake_feats: same structure for the generated pair (keep its graph so gradients reach the generator).
        include_last: also match the last element of each list (the logits). Default False, as in pix2pixHD.

    Returns:
        scalar: the mean over scales and layers of ``mean(|real - fake|)``. pix2pixHD's
        ``sum_k 1/num_D sum_i 4/(n_layers+1) L1`` equals 4 times this value for its ``n_layers + 1`` intermediate
        features; fold such constants into the loss weight.
    """
    real_scales = _as_scales(real_feats, "real_feats")
    fake_scales = _as_scales(fake_feats, "fake_feats")
    if len(real_scales) != len(fake_scales):
        raise ValueError(
            f"feature_matching_loss: real_feats has {len(real_scales)} scales, fake_feats has {len(fake_scales)}"
        )
    scale_losses = []
    for k, (real, fake) in enumerate(zip(real_scales, fake_scales)):
        if len(real) != len(fake):
            raise ValueError(f"feature_matching_loss: scale {k} has {len(real)} real and {len(fake)} fake feature maps")
        if not include_last:
            real, fake = real[:-1], fake[:-1]
        if not real:
            raise ValueError(
                f"feature_matching_loss: scale {k} has no intermediate features (only logits); "
                "use include_last=True to match the logits"
            )
        layer_losses = []
        for i, (r, f) in enumerate(zip(real, fake)):
            if r.shape != f.shape:
                raise ValueError(
                    f"feature_matching_loss: scale {k} layer {i}: real shape {tuple(r.shape)} != fake shape "
                    f"{tuple(f.shape)}"
                )
            layer_losses.append(torch.mean(torch.abs(f - r.detach())))
        scale_losses.append(torch.stack(layer_losses).mean())
    return torch.stack(scale_losses).mean()
