"""SynthRAD image metrics (MAE, PSNR, SSIM / MS-SSIM, plus bone Dice and local SSIM) and the ``evaluate`` command.

See :mod:`custom.metrics.synthrad` for the definitions and :mod:`custom.metrics.evaluate` for scoring files.
"""

from custom.metrics.evaluate import evaluate_case, evaluate_command, evaluate_datalist, parse_range, summarize
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
    "bone_dice",
    "compute_metrics",
    "local_ssim",
    "mae",
    "ms_ssim",
    "protocol_range",
    "psnr",
    "resolve_protocols",
    "ssim",
    "evaluate_case",
    "evaluate_command",
    "evaluate_datalist",
    "parse_range",
    "summarize",
]
