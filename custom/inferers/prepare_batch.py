"""Batch preparation that passes the body mask, when the batch has one, to the inferer as its ``mask`` keyword."""

from __future__ import annotations

from typing import Any

import torch
from monai.engines.utils import PrepareBatch, default_prepare_batch

__all__ = ["PrepareBatchWithMask"]


class PrepareBatchWithMask(PrepareBatch):
    """MONAI's default batch preparation, plus ``{"mask": batch[mask_key]}`` as keyword arguments of the inferer.

    MONAI's ``PrepareBatchExtraInput`` requires the key in every batch; the body mask is optional at inference (a
    SynthRAD case has one, a lone MR file does not), so without it the inferer is called as usual.

    Args:
        mask_key: the batch key of the body mask; None: never pass one (the inferer runs on the whole image).
    """

    def __init__(self, mask_key: str | None = "mask") -> None:
        self.mask_key = mask_key

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple, dict]:
        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        mask = batchdata.get(self.mask_key) if self.mask_key and isinstance(batchdata, dict) else None
        if not isinstance(mask, torch.Tensor):
            return image, label, (), {}
        return image, label, (), {"mask": mask.to(device=device, non_blocking=non_blocking, **kwargs)}
