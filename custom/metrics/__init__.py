"""SynthRAD image metrics (MAE, PSNR, SSIM / MS-SSIM, plus bone Dice and local SSIM) on arrays, their summaries, and
the masked-MAE Ignite metric the bundles validate with. Reading files and datalists is :mod:`custom.scoring`'s job."""

from custom.metrics.checkerboard import checkerboard_score
from custom.metrics.masked_mae import MaskedMAE
from custom.metrics.summary import format_summary, summarize
from custom.metrics.synthrad import (
    EIGHT_BIT_RANGE,
    MS_SSIM_WEIGHTS,
    PROTOCOLS,
    SYNTHRAD2023_RANGE,
    SYNTHRAD2025_RANGE,
    bone_dice,
    compute_metrics,
    local_ssim,
    mae,
    ms_ssim,
    protocol_range,
    psnr,
    resolve_protocols,
    ssim,
)

__all__ = [
    "EIGHT_BIT_RANGE",
    "MS_SSIM_WEIGHTS",
    "PROTOCOLS",
    "SYNTHRAD2023_RANGE",
    "SYNTHRAD2025_RANGE",
    "MaskedMAE",
    "bone_dice",
    "checkerboard_score",
    "compute_metrics",
    "format_summary",
    "local_ssim",
    "mae",
    "ms_ssim",
    "protocol_range",
    "psnr",
    "resolve_protocols",
    "ssim",
    "summarize",
]
