"""Ignite metric: mean absolute error inside the body mask, per case, averaged over cases.

    MAE_case = sum(|pred - label| * m) / sum(m),   m = mask > 0 (the whole image when the batch has no mask)

This is the validation key metric of the bundles (lower is better), computed in HU after the prediction has been
mapped back from the network's [-1, 1] range. It is the SynthRAD MAE; the full SynthRAD protocol is in
``custom.metrics.synthrad``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce
from monai.utils.enums import CommonKeys as Keys

__all__ = ["MaskedMAE"]


class MaskedMAE(Metric):
    """Per-case masked MAE averaged over cases, from an evaluator's (decollated) output.

    Args:
        pred_key, label_key, mask_key: keys in each output item; a missing mask means the whole image.
        output_transform: Ignite output transform; the default passes the evaluator output through.
    """

    def __init__(
        self,
        pred_key: str = Keys.PRED,
        label_key: str = Keys.LABEL,
        mask_key: str = "mask",
        output_transform: Callable = lambda x: x,
        device: str | torch.device = "cpu",
    ) -> None:
        self.pred_key, self.label_key, self.mask_key = pred_key, label_key, mask_key
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        self._sum = 0.0
        self._count = 0

    @reinit__is_reduced
    def update(self, output: Mapping | Sequence[Mapping]) -> None:
        items = [output] if isinstance(output, Mapping) else list(output)
        for item in items:
            pred = torch.as_tensor(item[self.pred_key]).detach().double()
            label = torch.as_tensor(item[self.label_key]).detach().double()
            if pred.shape != label.shape:
                raise ValueError(
                    f"MaskedMAE: prediction shape {tuple(pred.shape)} != label shape {tuple(label.shape)}."
                )
            mask = item.get(self.mask_key)
            weights = torch.ones_like(label) if mask is None else (torch.as_tensor(mask).to(label.device) > 0).double()
            total = weights.sum()
            if total == 0:
                raise ValueError("MaskedMAE: empty mask for a validation case.")
            self._sum += float(((pred - label).abs() * weights).sum() / total)
            self._count += 1

    @sync_all_reduce("_sum", "_count")  # distributed validation: every process scored its share of the cases
    def compute(self) -> float:
        if self._count == 0:
            raise NotComputableError("MaskedMAE needs at least one case before it can be computed.")
        return self._sum / self._count
