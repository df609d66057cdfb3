"""Ensembles and test-time augmentation of a synthesis network, with a voxel-wise spread as the uncertainty.

For members f_1..f_M (networks trained with different seeds) and exact, invertible augmentations T_1..T_A (the
identity and flips: T_a^{-1} = T_a), the prediction at a voxel is a combination of the N = M * A values

    y_{m,a} = T_a^{-1}( f_m( T_a(x) ) )

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

import torch

__all__ = ["BONE_RULES", "COMBINE_RULES", "TTA_CHOICES", "Ensemble", "flip_variants"]

COMBINE_RULES = ("mean", "median", "bone_vote", "bone_half")
BONE_RULES = ("bone_vote", "bone_half")
TTA_CHOICES = ("none", "flip")


def flip_variants(tta: str, axes: Sequence[int] = (0,)) -> list[tuple[int, ...]]:
    """The augmentations of ``tta`` as the spatial axes each one flips: ``"none"`` -> ``[()]`` (the identity only);
    ``"flip"`` -> the identity and every combination of flips along ``axes`` (spatial axes, 0 = the first one after
    the channel; in RAS order 0 is left-right, the mirror symmetry of the head), 2^len(axes) variants.

    Raises:
        ValueError: an unknown ``tta``, or ``axes`` that are not distinct non-negative whole numbers.
    """
    if tta not in TTA_CHOICES:
        raise ValueError(f"tta {tta!r}: expected one of {', '.join(TTA_CHOICES)}")
    axes = list(axes)
    if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in axes) or len(set(axes)) < len(axes):
        raise ValueError(f"tta_axes {axes!r}: expected distinct spatial axes (0, 1, 2), e.g. [0] for left-right")
    if tta == "none":
        return [()]
    return [combo for n in range(len(axes) + 1) for combo in itertools.combinations(sorted(axes), n)]


class Ensemble(torch.nn.Module):
    """Members x test-time flips, combined voxel-wise; optionally their spread as a second output channel.

    Args:
        members: the networks (same input and output channels); they run one after the other on each input, so memory
            holds one member's activations at a time.
        flips: the augmentations, each as the spatial axes it flips (:func:`flip_variants`); ``[()]`` for none.
        combine: ``"mean"``, ``"median"``, ``"bone_vote"`` or ``"bone_half"`` (see the module docstring).
        uncertainty: also return the standard deviation over members x augmentations as a second channel.
        bone_level: b of the bone rules, in the network's output units (e.g. 250 HU mapped by the CT window).

    Input ``(B, C, *spatial)``; output ``(B, 1, *spatial)``, or ``(B, 2, *spatial)`` (prediction, spread) with
    ``uncertainty``.

    Raises:
        ValueError: no member, no augmentation, an unknown combine rule, a bone rule without a bone level, or a
            member whose output has more than one channel.
    """

    def __init__(
        self,
        members: Sequence[torch.nn.Module],
        flips: Sequence[Sequence[int]] = ((),),
        combine: str = "mean",
        uncertainty: bool = False,
        bone_level: float | None = None,
    ) -> None:
        super().__init__()
        if len(members) == 0:
            raise ValueError("Ensemble: no member network")
        if len(flips) == 0:
            raise ValueError("Ensemble: no augmentation (use [()] for none)")
        if combine not in COMBINE_RULES:
            raise ValueError(f"combine {combine!r}: expected one of {', '.join(COMBINE_RULES)}")
        if combine in BONE_RULES and bone_level is None:
            raise ValueError(f"combine {combine!r} needs bone_level (the bone threshold in the network's units)")
        if not isinstance(uncertainty, bool):
            raise ValueError(f"uncertainty {uncertainty!r}: expected true or false")
        self.members = torch.nn.ModuleList(members)
        self.flips = [tuple(int(a) for a in f) for f in flips]
        self.combine = combine
        self.uncertainty = uncertainty
        self.bone_level = None if bone_level is None else float(bone_level)

    @property
    def size(self) -> int:
        """N, the number of predictions combined per voxel (members x augmentations)."""
        return len(self.members) * len(self.flips)

    def _prediction(self, member: torch.nn.Module, x: torch.Tensor, flip: tuple[int, ...]) -> torch.Tensor:
        dims = [2 + a for a in flip]
        if any(d >= x.dim() for d in dims):
            raise ValueError(f"Ensemble: flip axes {flip} do not exist for an input of shape {tuple(x.shape)}")
        if not dims:
            return member(x)
        return torch.flip(member(torch.flip(x, dims)), dims)

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
        if self.size == 1 and not self.uncertainty:
            return self.members[0](x)
        predictions = []
        for member in self.members:
            for flip in self.flips:
                y = self._prediction(member, x, flip)
                if y.shape[1] != 1:
                    raise ValueError(f"Ensemble: a member returned {y.shape[1]} channels, expected 1")
                predictions.append(y.float())
        stack = torch.stack(predictions)  # (N, B, 1, *spatial)
        combined = self._combined(stack)
        if not self.uncertainty:
            return combined
        spread = stack.std(0, correction=0) if len(predictions) > 1 else torch.zeros_like(combined)
        return torch.cat([combined, spread], dim=1)
