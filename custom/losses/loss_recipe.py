"""A generator loss given as data: named, weighted, optionally masked terms.

    L_G = sum_k  w_k · reduce_k( loss_k(*inputs_k) )

Each term names the tensors its loss is called with (``inputs``, looked up in the step's namespace, e.g. ``pred``,
``label``, ``image``, ``mask``, ``d_fake``, ``d_real`` for Pix2Pix) or gives a number (a constant image like the first
input, e.g. ``-1`` = air in a [-1, 1] CT window). ``region`` restricts the term:

- ``"all"``: the whole image (a non-scalar loss is averaged over every element);
- ``"mask"``: inside the body mask ``m`` (``sum(l·m) / sum(m)``; the whole image when the batch has no mask);
- ``"outside"``: outside it (``sum(l·(1-m)) / sum(1-m)``; 0 when the batch has no mask).

``m`` is the namespace's ``mask`` unless the term names another one (``"mask": "ct_mask"``: a step with masks of two
domains, e.g. CycleGAN's MR and CT body masks).

A loss whose ``forward`` takes a ``mask`` argument (``custom.losses.NGFLoss``) receives the region's weights itself;
any other loss must return element-wise values (``reduction="none"``) to be restricted to a region. A loss returning a
scalar (MONAI's ``SSIMLoss``) is used as it is with ``region="all"``.

In a bundle config (``train.json``)::

    "generator_losses": {
        "adv": {"loss": "$custom.losses.GeneratorAdversarialLoss(@adversarial_loss)", "inputs": ["d_fake"]},
        "l1": {"loss": "$torch.nn.L1Loss(reduction='none')", "weight": 100, "region": "mask"},
        "ssim": {"loss": "$monai.losses.SSIMLoss(spatial_dims=2, data_range=2.0)", "weight": 5}
    }

The trainer logs every term as ``loss_<name>`` (its unweighted value) and the weighted sum as ``loss_g``. A term of
weight 0 is not computed (logged as 0).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

__all__ = ["LossTerm", "LossRecipe", "REGIONS", "masked_mean"]

REGIONS = ("all", "mask", "outside")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _takes_mask(loss: Callable) -> bool:
    target = loss.forward if isinstance(loss, torch.nn.Module) else loss
    try:
        return "mask" in inspect.signature(target).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def masked_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``sum(values · weights) / sum(weights)`` (weights broadcast to ``values``); the plain mean without weights."""
    if weights is None:
        return values.mean()
    weights = weights.to(values.dtype).expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


class LossTerm:
    """One term of a generator loss (see the module docstring).

    Args:
        loss: a callable, e.g. ``torch.nn.L1Loss(reduction="none")``, ``custom.losses.NGFLoss()``,
            ``monai.losses.SSIMLoss(spatial_dims=2, data_range=2.0)``.
        weight: the term's weight, >= 0.
        inputs: names in the step's namespace, or numbers (constant images shaped like the first tensor input).
        region: ``"all"``, ``"mask"`` or ``"outside"``.
        mask: the namespace name of the region's mask (default ``"mask"``).
    """

    def __init__(
        self,
        loss: Callable,
        weight: float = 1.0,
        inputs: Sequence[str | float] = ("pred", "label"),
        region: str = "all",
        mask: str = "mask",
    ) -> None:
        if not callable(loss):
            raise TypeError(f"LossTerm: loss must be callable, got {type(loss).__name__}.")
        weight = float(weight)
        if not weight >= 0:
            raise ValueError(f"LossTerm: weight must be >= 0, got {weight}.")
        if region not in REGIONS:
            raise ValueError(f"LossTerm: region must be one of {REGIONS}, got {region!r}.")
        inputs = list(inputs)
        if not inputs or not isinstance(inputs[0], str):
            raise ValueError(f"LossTerm: the first input must name a tensor (e.g. 'pred'), got {inputs!r}.")
        if not isinstance(mask, str) or not mask:
            raise ValueError(f"LossTerm: mask must name a tensor of the namespace (e.g. 'mask'), got {mask!r}.")
        self.loss, self.weight, self.inputs, self.region, self.mask = loss, weight, inputs, region, mask
        self.takes_mask = _takes_mask(loss)

    def _weights(self, mask: torch.Tensor | None) -> torch.Tensor | None:
        if self.region == "all" or mask is None:
            return None
        return mask if self.region == "mask" else 1.0 - mask

    def __call__(self, tensors: Mapping[str, Any]) -> torch.Tensor:
        """The unweighted value of the term for the namespace ``tensors``."""
        first = tensors[self.inputs[0]]
        if self.region == "outside" and tensors.get(self.mask) is None:
            return first.new_zeros(()) if isinstance(first, torch.Tensor) else torch.zeros(())
        args = []
        for name in self.inputs:
            if isinstance(name, str):
                value = tensors[name]
                args.append(value.float() if isinstance(value, torch.Tensor) else value)
            else:
                args.append(torch.full_like(first, float(name), dtype=torch.float32))
        weights = self._weights(tensors.get(self.mask))
        if self.takes_mask:
            return self.loss(*args, mask=weights)
        value = self.loss(*args)
        if value.ndim == 0:
            if weights is not None:
                raise ValueError(
                    f"LossTerm: {type(self.loss).__name__} returns a scalar, so it cannot be restricted to region "
                    f"{self.region!r}; use reduction='none' or region 'all'."
                )
            return value
        return masked_mean(value, weights)


class LossRecipe:
    """Named loss terms and their weighted sum: ``total, values = recipe(tensors)``.

    Args:
        terms: ``{name: LossTerm or dict of LossTerm arguments}``; names are identifiers (logged as ``loss_<name>``).
    """

    def __init__(self, terms: Mapping[str, LossTerm | Mapping[str, Any]]) -> None:
        if not terms:
            raise ValueError("LossRecipe: needs at least one term.")
        self.terms: dict[str, LossTerm] = {}
        for name, term in terms.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(f"LossRecipe: term name {name!r} must be an identifier (letters, digits, _).")
            if isinstance(term, Mapping):
                try:
                    term = LossTerm(**term)
                except TypeError as e:
                    raise TypeError(f"LossRecipe: term {name!r}: {e}") from None
            if not isinstance(term, LossTerm):
                raise TypeError(f"LossRecipe: term {name!r} must be a LossTerm or a dict, got {type(term).__name__}.")
            self.terms[name] = term

    @property
    def names(self) -> list[str]:
        """The logged names, ``loss_<term>``."""
        return [f"loss_{name}" for name in self.terms]

    def needs(self, name: str) -> bool:
        """Whether a term of non-zero weight reads ``name`` from the namespace."""
        return any(t.weight > 0 and name in t.inputs for t in self.terms.values())

    def __call__(self, tensors: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        values: dict[str, torch.Tensor] = {}
        total = None
        for name, term in self.terms.items():
            if term.weight == 0:
                values[f"loss_{name}"] = torch.zeros(())
                continue
            value = term(tensors)
            values[f"loss_{name}"] = value
            total = term.weight * value if total is None else total + term.weight * value
        if total is None:
            raise ValueError("LossRecipe: every term has weight 0; nothing trains the generator.")
        return total, values
