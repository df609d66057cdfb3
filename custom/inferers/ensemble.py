"""An inferer that runs an ensemble of models, each under test-time augmentations, through another inferer.

The members (the network the config loads, plus one copy of it per extra model file) and the augmentations (flips,
shifts) are combined per voxel by :class:`custom.networks.Ensemble` (formulas there). The wrapped inferer (a
``SliceInferer``, a ``SlidingWindowInferer``, a :class:`CropToMaskInferer`...) is called once with that ensemble as its
network, so the input is read and tiled once and every member and augmentation sees the same windows.

Being the config's ``inferer``, it runs under ``python -m custom infer``, ``python -m monai.bundle run`` and MONAI
Label alike (MONAI Label's bundle task loads ``network_def`` with ``models/model.pt`` itself and calls the bundle's
``inferer`` with it). Every path hands it the plain network (``network_def`` with the model's weights), and it makes
that network ready for inference itself (``prepare``: :func:`custom.networks.prepare_for_inference` in the configs),
so all three run the very same prepared network and write the same sCT. That matters beyond float rounding: a
bone rule switches at the bone level, so a prediction rounded to the other side of it changes the output by far more
than the rounding. With nothing to combine (no extra model, ``tta="none"``, no uncertainty) it is exactly the
wrapped inferer with the prepared network.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.inferers import Inferer

from custom.errors import InputError

__all__ = ["EnsembleInferer"]


class EnsembleInferer(Inferer):
    """``inferer(inputs, Ensemble([network, *copies of it with member_weights], augmentations, combine, ...))``.

    Args:
        inferer: how one model runs over an input (e.g. the bundle's sliding window).
        member_weights: the state dicts of the other members (the configs read them with
            :func:`custom.inference.member_weights`, which checks each model and its record first).
        tta: ``"none"``, ``"flip"`` (the identity and the flips along ``tta_axes``), ``"shift"`` (the identity and
            the shifts by ``tta_shift`` voxels along every combination of the network's ``spatial_dims`` axes) or
            ``"flip_shift"`` (both; see :func:`custom.networks.tta_variants`).
        tta_axes: spatial axes to flip (0 = the first spatial axis: left-right in RAS volumes and PNG slices).
        tta_shift: voxels a shift pads on each side (8: half the 16-voxel grid of a 4-level U-Net).
        spatial_dims: the spatial axes of what the network is given (2 for a slice network, also under a 2.5D
            wrapper; 3 for 3D windows): the axes a shift moves along.
        combine: ``"mean"``, ``"median"``, ``"bone_vote"`` or ``"bone_half"`` over members x augmentations.
        uncertainty: also return the standard deviation over members x augmentations as a second channel.
        bone_level: the bone threshold of the bone rules in the network's output units.
        prepare: makes the network handed in ready for inference (a copy: e.g. group norms, channels-last, the
            precision), once per network and weights; ``None`` runs it as handed in.

    Raises:
        InputError: an unknown ``tta`` or ``combine``, a bad ``tta_shift``, a bone rule without ``bone_level``, a
            non-boolean ``uncertainty``.
    """

    def __init__(
        self,
        inferer: Inferer,
        member_weights: Sequence[Mapping[str, torch.Tensor]] = (),
        tta: str = "none",
        tta_axes: Sequence[int] = (0,),
        tta_shift: int = 8,
        spatial_dims: int = 2,
        combine: str = "mean",
        uncertainty: Any = False,
        bone_level: float | None = None,
        prepare: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
    ) -> None:
        from custom.config_keys import flag
        from custom.networks import BONE_RULES, COMBINE_RULES, Augmentation, tta_variants

        super().__init__()
        try:
            self.augmentations = tta_variants(str(tta), [int(a) for a in tta_axes], int(spatial_dims))
        except (TypeError, ValueError) as e:
            raise InputError(str(e)) from None
        if isinstance(tta_shift, bool) or not isinstance(tta_shift, int) or tta_shift < 1:
            raise InputError(f"tta_shift {tta_shift!r}: expected a whole number of voxels >= 1")
        self.tta_shift = tta_shift
        self._identity = [Augmentation()]
        if combine not in COMBINE_RULES:
            raise InputError(f"combine {combine!r}: expected one of {', '.join(COMBINE_RULES)}")
        if combine in BONE_RULES and bone_level is None:
            raise InputError(f"combine {combine!r} needs bone_level (bone_threshold in the network's units)")
        self.inferer = inferer
        self.member_weights = list(member_weights)
        self.combine = combine
        self.uncertainty = flag(uncertainty, "uncertainty")
        self.bone_level = bone_level
        self.prepare = prepare
        self._built: tuple[int, torch.nn.Module] | None = None  # (id of the network, its ensemble)
        # network handed in -> (its weights' versions, its prepared copy); weak, so a dropped network is not kept
        self._prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @property
    def plain(self) -> bool:
        """Nothing to combine: the wrapped inferer runs the (prepared) network alone."""
        return not self.member_weights and self.augmentations == self._identity and not self.uncertainty

    def prepared(self, network: Any) -> Any:
        """``prepare(network)``, made again when the network's weights change: a tensor replaced (``load_state_dict``
        with ``assign=True``) or written in place (a checkpoint loaded into it: every in-place write bumps a tensor's
        version counter). A TorchScript network (MONAI Label's ``model.ts``) cannot take the preparation's hooks and
        runs as it is; one whose weights are inference tensors (made under ``torch.inference_mode``, which keeps no
        version counters) is prepared at every call."""
        if self.prepare is None or not isinstance(network, torch.nn.Module):
            return network
        if isinstance(network, torch.jit.ScriptModule):
            return network
        tensors = list(network.state_dict(keep_vars=True).values())
        if any(torch.is_inference(t) for t in tensors):
            return self.prepare(network)
        cached = self._prepared.get(network)
        if (
            cached is None
            or len(cached[0]) != len(tensors)
            or any(ref() is not t or version != t._version for (ref, version), t in zip(cached[0], tensors))
        ):
            cached = ([(weakref.ref(t), t._version) for t in tensors], self.prepare(network))
            self._prepared[network] = cached
        return cached[1]

    def ensemble(self, network: torch.nn.Module) -> torch.nn.Module:
        """The ensemble around ``network`` (built once per network): ``network`` and a copy of it per member."""
        from custom.networks import Ensemble

        if self._built is None or self._built[0] != id(network):
            members = [network]
            for state in self.member_weights:
                member = copy.deepcopy(network)
                member.load_state_dict(state)
                members.append(member)
            ensemble = Ensemble(
                members, self.augmentations, self.combine, self.uncertainty, self.bone_level, self.tta_shift
            )
            self._built = (id(network), ensemble)
        return self._built[1]

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        network = self.prepared(network)
        if self.plain:
            return self.inferer(inputs, network, *args, **kwargs)
        return self.inferer(inputs, self.ensemble(network), *args, **kwargs)
