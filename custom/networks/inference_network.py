"""A network made ready for fast inference, with the same parameter names (a checkpoint loads into it as before).

What changes, and why each step is exact or bounded:

- **eval mode**.
- **Instance norm → group norm with one channel per group.** Both compute, per sample and channel c,

      y = (x − mean_c(x)) / sqrt(var_c(x) + eps) · γ_c + β_c

  (Ulyanov et al., Instance Normalization, 2016; Wu & He, Group Normalization, ECCV 2018: GroupNorm with G = C *is*
  InstanceNorm). PyTorch's CPU group-norm kernel is several times faster and keeps channels-last tensors
  channels-last, whereas instance norm runs as a reshaped batch norm and converts them back. Same formula, same
  parameters (``weight``/``bias`` of shape (C,) when affine); outputs agree to float rounding (~1e-6). Instance norms
  that use running statistics are left alone (they are not per-sample).
- **Channels-last memory layout** (NHWC / NDHWC) for weights and inputs, the inputs with explicit channels-last
  strides (:mod:`custom.networks.layout`): oneDNN's CPU convolutions are 2–3x faster in it. Layout only.
- **No zero-width pads** in MONAI's ``BasicUNet`` decoder (:func:`~custom.networks.layout.skip_zero_width_pads`).
- **Precision** ``fp32`` (default), ``bf16`` (CPUs with AVX512-BF16/AMX and recent GPUs), ``fp16`` (GPUs only) or
  ``auto`` (bf16 where the hardware has it, see :mod:`custom.networks.precision`): the weights are cast and every
  input is cast to them; the output is returned as float32, so sliding-window blending
  and the conversion to HU stay in fp32. bf16 keeps 8 bits of mantissa: its cost on a trained model is measured in
  the bundles' docs, not assumed.

Use in a bundle's inference config: the config's ``inferer`` (:class:`custom.inferers.EnsembleInferer`) prepares the
network it is handed, on the device it is on, so every path (``custom infer``, ``monai.bundle run``, MONAI Label,
which builds ``network_def`` itself) runs the same prepared network::

    "precision": "fp32",
    "network": "$@network_def.to(@device)",
    "prepare_network": "$functools.partial(custom.networks.prepare_for_inference, precision=@precision)",
    "inferer": {
        "_target_": "custom.inferers.EnsembleInferer", "inferer": "@model_inferer", "prepare": "@prepare_network"
    }

``network_def`` stays the plain network (what ``ckpt_export``, MONAI Label and training build).
"""

from __future__ import annotations

import copy

import torch

from custom.config_keys import flag
from custom.networks.layout import channels_last_parameters, skip_zero_width_pads, with_channels_last_strides
from custom.networks.precision import PRECISIONS, resolve_precision

__all__ = ["prepare_for_inference"]


def _exact_group_norms(module: torch.nn.Module) -> None:
    """Replace, in place, every per-sample instance norm under ``module`` by the equal GroupNorm(C, C)."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.modules.instancenorm._InstanceNorm) and not child.track_running_stats:
            norm = torch.nn.GroupNorm(child.num_features, child.num_features, eps=child.eps, affine=child.affine)
            if child.affine:
                norm.load_state_dict(child.state_dict())
            setattr(module, name, norm)
        else:
            _exact_group_norms(child)


def _format(x: torch.Tensor, dtype: torch.dtype, channels_last: bool) -> torch.Tensor:
    return with_channels_last_strides(x, dtype) if channels_last else x.to(dtype=dtype)


def prepare_for_inference(
    network: torch.nn.Module,
    precision: str = "fp32",
    device: torch.device | str | None = None,
    channels_last: bool | str = True,
) -> torch.nn.Module:
    """A copy of ``network`` converted for inference (see the module docstring); ``network`` itself is unchanged.

    Args:
        network: the network; the copy has the same parameter names (its checkpoint is loaded into the copy).
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"`` (GPU only) or ``"auto"``.
        device: where the network runs (default: where it is).
        channels_last: use the channels-last memory layout for 2D and 3D tensors (a bool, or "true"/"false" as a
            command line passes it).

    Raises:
        ValueError: an unknown precision, fp16 on a CPU, or a channels_last that is not a switch.
    """
    channels_last = flag(channels_last, "channels_last")
    network = copy.deepcopy(network).eval()
    if device is None:  # where the network is (a network without parameters: the CPU)
        device = next(network.parameters(), torch.empty(0)).device
    precision = resolve_precision(precision, device)
    dtype = PRECISIONS[precision]
    _exact_group_norms(network)
    skip_zero_width_pads(network)
    network.to(device=device, dtype=dtype)
    if precision == "fp16" and next(network.parameters(), torch.empty(0)).device.type == "cpu":
        raise ValueError("precision fp16 needs a GPU; use bf16 (or fp32) on a CPU")
    if channels_last:
        channels_last_parameters(network)

    def cast_inputs(_module: torch.nn.Module, args: tuple) -> tuple:
        return tuple(_format(a, dtype, channels_last) if isinstance(a, torch.Tensor) else a for a in args)

    def float_outputs(_module: torch.nn.Module, _args: tuple, output):
        return output.float() if isinstance(output, torch.Tensor) else output

    network.register_forward_pre_hook(cast_inputs)
    network.register_forward_hook(float_outputs)
    return network
