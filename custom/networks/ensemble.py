"""Ensembles and test-time augmentation of a synthesis network, with a voxel-wise spread as the uncertainty.

For members f_1..f_M (networks trained with different seeds) and exact, invertible augmentations T_1..T_A, the
prediction at a voxel is a combination of the N = M * A values

    y_{m,a} = T_a^{-1}( f_m( T_a(x) ) )

The augmentations (:func:`tta_variants`) are flips and shifts and their combinations:

- a flip along spatial axis k mirrors the input (T^{-1} = T); along the left-right axis it is the head's own symmetry;
- a shift along axis k pads the input with s voxels on both sides (replicating the edge) and crops the output back:
  the anatomy lands s voxels further on the network's pooling grid (a U-Net with four poolings sees a 16-voxel
  grid; s = 8 is half a cell), so the network's aliasing at that grid differs while no voxel is lost or invented.
  Shift TTA against the pooling grid: Zhang, "Making convolutional networks shift-invariant again", ICML 2019
  (why outputs change under shifts); the padded size must suit the network (BasicUNet takes any size; a SwinUNETR
  window needs multiples of 32, so s = 16 there; a 6-level Pix2PixUNet multiples of 64, so s = 32).

They are combined as follows:

- ``combine="mean"``: y = (1/N) sum y_{m,a};  ``combine="median"``: the median of the N values (the lower of the two
  middle values when N is even, as ``torch.median``);
- ``combine="bone_vote"`` (bone-preserving): the mean, except where more than half of the N values are at or above
  the bone level b; there the mean of those values only, y = mean{y_{m,a} : y_{m,a} >= b}. Averaging members whose
  skull edges do not coincide pulls edge voxels below b (bone Dice falls); with this rule a voxel that most
  predictions call bone stays bone, and every other voxel is the plain mean;
- ``combine="bone_half"``: as ``"bone_vote"``, but a tie counts as bone (at least half of the N values at or above b).
  The two differ only when N is even; for N = 2 (one model and its left-right flip) ``"bone_vote"`` needs both
  predictions to call a voxel bone, ``"bone_half"`` either, so mirrored skull edges that do not coincide stay bone
  (swin_pix2pix_3d's default, measured in its docs);
- the uncertainty is their standard deviation, s = sqrt((1/N) sum (y_{m,a} - mean)^2) (the population form, so N
  identical values give exactly 0, and a single prediction 0).

Model ensembles: Lakshminarayanan et al., "Simple and scalable predictive uncertainty estimation using deep
ensembles", NeurIPS 2017. Test-time augmentation: Wang et al., "Aleatoric uncertainty estimation with test-time
augmentation for medical image segmentation", Neurocomputing 2019. For sCT (ensembles, TTA and uncertainty maps in
one tool): IMPACT-Synth (SynthRAD 2025).

:class:`Ensemble` is a ``torch.nn.Module`` that any MONAI inferer calls like the plain network (on a slice, a
window or a whole volume); with ``uncertainty=True`` it returns two channels, the combined prediction and the
spread, which the bundles' post-processing splits (:class:`custom.transforms.SplitUncertaintyd`). One member, no
augmentation and no uncertainty is exactly the member's own output.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from custom.errors import InputError

__all__ = ["BONE_RULES", "COMBINE_RULES", "TTA_CHOICES", "Augmentation", "Ensemble", "tta_variants"]

COMBINE_RULES = ("mean", "median", "bone_vote", "bone_half")
BONE_RULES = ("bone_vote", "bone_half")
TTA_CHOICES = ("none", "flip", "shift", "flip_shift")


class Augmentation(NamedTuple):
    """One test-time augmentation: the spatial axes it flips and the spatial axes it shifts (0 = the first spatial
    axis after the channel); ``Augmentation()`` is the identity."""

    flips: tuple[int, ...] = ()
    shifts: tuple[int, ...] = ()


def _subsets(axes: Sequence[int]) -> list[tuple[int, ...]]:
    return [combo for n in range(len(axes) + 1) for combo in itertools.combinations(sorted(axes), n)]


def tta_variants(tta: str, axes: Sequence[int] = (0,), spatial_dims: int = 2) -> list[Augmentation]:
    """The augmentations of ``tta``, the identity first:

    - ``"none"``: the identity only;
    - ``"flip"``: every combination of flips along ``axes`` (2^len(axes); in RAS order axis 0 is left-right);
    - ``"shift"``: every combination of shifts along the ``spatial_dims`` axes of the network's input (2^spatial_dims:
      4 for slices, 8 for 3D windows);
    - ``"flip_shift"``: every flip combination with every shift combination.

    Raises:
        ValueError: an unknown ``tta``, ``axes`` that are not distinct non-negative whole numbers, or ``spatial_dims``
            not 1, 2 or 3.
    """
    if tta not in TTA_CHOICES:
        raise ValueError(f"tta {tta!r}: expected one of {', '.join(TTA_CHOICES)}")
    axes = list(axes)
    if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in axes) or len(set(axes)) < len(axes):
        raise ValueError(f"tta_axes {axes!r}: expected distinct spatial axes (0, 1, 2), e.g. [0] for left-right")
    if spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims {spatial_dims!r}: expected 1, 2 or 3")
    flips = _subsets(axes) if tta in ("flip", "flip_shift") else [()]
    shifts = _subsets(range(spatial_dims)) if tta in ("shift", "flip_shift") else [()]
    return [Augmentation(f, s) for f in flips for s in shifts]


class Ensemble(torch.nn.Module):
    """Members x test-time augmentations, combined voxel-wise; optionally their spread as a second output channel.

    Args:
        members: the networks (same input and output channels); they run one after the other on each input, so memory
            holds one member's activations at a time.
        augmentations: :class:`Augmentation` s (:func:`tta_variants`); ``[Augmentation()]`` for none.
        combine: ``"mean"``, ``"median"``, ``"bone_vote"`` or ``"bone_half"`` (see the module docstring).
        uncertainty: also return the standard deviation over members x augmentations as a second channel.
        bone_level: b of the bone rules, in the network's output units (e.g. 250 HU mapped by the CT window).
        shift: s, the voxels a shift pads on each side of an axis.

    Input ``(B, C, *spatial)``; output ``(B, 1, *spatial)``, or ``(B, 2, *spatial)`` (prediction, spread) with
    ``uncertainty``.

    Raises:
        ValueError: no member, no augmentation, an unknown combine rule, a bone rule without a bone level, a shift
            that is not a whole number >= 1, or a member whose output has more than one channel.
        InputError (when called): a network that refuses the shifted input's size (``tta_shift`` should be half the
            size multiple the network needs: 8 for a 4-level BasicUNet, 32 for a 6-level Pix2PixUNet).
    """

    def __init__(
        self,
        members: Sequence[torch.nn.Module],
        augmentations: Sequence[Augmentation] = (Augmentation(),),
        combine: str = "mean",
        uncertainty: bool = False,
        bone_level: float | None = None,
        shift: int = 8,
    ) -> None:
        super().__init__()
        if len(members) == 0:
            raise ValueError("Ensemble: no member network")
        if len(augmentations) == 0:
            raise ValueError("Ensemble: no augmentation (use [Augmentation()] for none)")
        if isinstance(shift, bool) or not isinstance(shift, int) or shift < 1:
            raise ValueError(f"tta_shift {shift!r}: expected a whole number of voxels >= 1")
        if combine not in COMBINE_RULES:
            raise ValueError(f"combine {combine!r}: expected one of {', '.join(COMBINE_RULES)}")
        if combine in BONE_RULES and bone_level is None:
            raise ValueError(f"combine {combine!r} needs bone_level (the bone threshold in the network's units)")
        if not isinstance(uncertainty, bool):
            raise ValueError(f"uncertainty {uncertainty!r}: expected true or false")
        self.members = torch.nn.ModuleList(members)
        self.augmentations = [Augmentation(*(tuple(int(a) for a in axes) for axes in aug)) for aug in augmentations]
        self.shift = shift
        self.combine = combine
        self.uncertainty = uncertainty
        self.bone_level = None if bone_level is None else float(bone_level)

    @property
    def size(self) -> int:
        """N, the number of predictions combined per voxel (members x augmentations)."""
        return len(self.members) * len(self.augmentations)

    def _prediction(self, member: torch.nn.Module, x: torch.Tensor, aug: Augmentation) -> torch.Tensor:
        """T^{-1}(member(T(x))), T the flips then the shifts of ``aug``."""
        flips, shifts = [2 + a for a in aug.flips], [2 + a for a in aug.shifts]
        if any(d >= x.dim() for d in flips + shifts):
            raise ValueError(f"Ensemble: augmentation axes {aug} do not exist for an input of shape {tuple(x.shape)}")
        if flips:
            x = torch.flip(x, flips)
        if shifts:
            pad = [0] * (2 * (x.dim() - 2))  # F.pad lists (before, after) from the last axis backwards
            for d in shifts:
                pad[2 * (x.dim() - 1 - d)] = pad[2 * (x.dim() - 1 - d) + 1] = self.shift
            padded = F.pad(x, pad, mode="replicate")
            try:
                y = member(padded)
            except (RuntimeError, ValueError) as e:  # e.g. a U-Net whose input must be a multiple of its grid
                raise InputError(
                    f"Ensemble: the network refused the input shifted by tta_shift={self.shift} (padded to "
                    f"{tuple(padded.shape[2:])}): {e}; if the network needs sizes that are a multiple of some k, "
                    "set tta_shift to k / 2"
                ) from e
            crop = [slice(self.shift, self.shift + x.shape[d]) if d in shifts else slice(None) for d in range(y.dim())]
            y = y[tuple(crop)]
        else:
            y = member(x)
        return torch.flip(y, flips) if flips else y

    def _combined(self, stack: torch.Tensor) -> torch.Tensor:
        if self.combine == "median":
            return stack.median(0).values
        mean = stack.mean(0)
        if self.combine == "mean":
            return mean
        bone = stack >= self.bone_level
        votes = bone.sum(0)
        bone_mean = (stack * bone).sum(0) / votes.clamp(min=1)
        quorum = 2 * votes >= stack.shape[0] if self.combine == "bone_half" else 2 * votes > stack.shape[0]
        return torch.where(quorum, bone_mean, mean)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.size == 1 and not self.uncertainty and self.augmentations[0] == Augmentation():
            return self.members[0](x)
        predictions = []
        for member in self.members:
            for aug in self.augmentations:
                y = self._prediction(member, x, aug)
                if y.shape[1] != 1:
                    raise ValueError(f"Ensemble: a member returned {y.shape[1]} channels, expected 1")
                predictions.append(y.float())
        stack = torch.stack(predictions)  # (N, B, 1, *spatial)
        combined = self._combined(stack)
        if not self.uncertainty:
            return combined
        spread = stack.std(0, correction=0) if len(predictions) > 1 else torch.zeros_like(combined)
        return torch.cat([combined, spread], dim=1)
