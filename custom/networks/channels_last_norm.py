"""Instance normalisation that keeps channels-last tensors channels-last and bf16 tensors bf16.

For each sample n and channel c (Ulyanov et al., Instance Normalization, 2016):

    y[n, c] = (x[n, c] − mean(x[n, c])) / sqrt(var(x[n, c]) + eps) · γ_c + β_c      (biased variance)

which is batch normalisation in training mode applied to one sample at a time. PyTorch's instance norm reshapes the
input to (1, N·C, ...) and calls batch norm, which forces a channels-last tensor back to NCHW (a copy forward and
one backward at every layer), and under CPU autocast it returns float32, so every following convolution casts its
input back to bf16. This module calls batch norm on each sample's slice instead: the kernel runs natively in the
channels-last layout, its sums are accumulated in float32 (without affine weights it keeps the statistics for the
backward in the input's dtype), and the output keeps the input's dtype. Each sample's kernel writes straight into its
slice of one output tensor (:class:`_PerSampleBatchNorm`): no concatenation forward (splitting and concatenating
forward and backward cost 4 % of the pix2pix_ngf step), the same values bit for bit. PyTorch's channels-last
batch-norm CPU kernel is vectorised over the channels and, when their number is not a multiple of 16, is 5-20x slower
than its NCHW kernel (measured forward + backward, 2M voxels in bf16 or fp32: 6-21 ms against 0.9 ms for C = 8, 12,
24; 1.3-1.6 ms for C = 16, 32, ..., 128, on an AVX512 CPU); for such channel counts (swin_pix2pix_3d's 12 and 24)
each sample is normalised in NCHW layout, between a copy in and a copy out (:data:`CHANNELS_LAST_KERNEL_MULTIPLE`). On a
CPU whose vector unit is AVX2 the channels-last kernel is only 1.5x slower than the NCHW one for 12 channels (fp32,
forward + backward of 12 x 192 x 192 x 32: 157 against 102 ms), less than the copies cost, so every channel count runs
it there (:data:`CPU_CHANNELS_LAST_KERNEL_MULTIPLE`; swin_pix2pix_3d's quick recipe: its generator's forward +
backward 0.94 of the time, best of 8 alternated steps; the whole training step 0.90-1.06, median 0.94, six alternated
pairs on a noisy machine). Same formula, same parameters (``weight``/``bias`` of shape (C,) when affine, so a
checkpoint loads either way), outputs equal to one bf16 rounding of the output under bf16 autocast. In fp32 the
channels-last kernel sums its statistics less accurately than the NCHW one, and more so the more voxels a channel has
(AVX2 CPU, one sample, values of mean 2 and sd 0.5, largest output error against float64: 6e-4 for 12 x 192 x 192 x 32,
of which 1.2e-4 is a per-channel scale; 6e-5 for 48 x 96 x 96 x 16; 2.6e-5 for 32 x 256 x 256; the NCHW kernel 7e-7
for each), still six times below one bf16 rounding (3.9e-3); training runs differ from the NCHW kernel's from the first
update on, as any change of rounding makes them (swin_pix2pix_3d's docs).

Measured on the pix2pix_ngf training step (2-core AVX512-BF16/AMX CPU, batch 4 of 256², bf16): with the channels-last
layout and inputs (:func:`custom.networks.for_training`) the step takes 0.55-0.64 of the plain NCHW step's time
(``make bench ARGS=--training-only``).
"""

from __future__ import annotations

import torch

from custom.networks.layout import CHANNELS_LAST

__all__ = [
    "CHANNELS_LAST_KERNEL_MULTIPLE",
    "CPU_CHANNELS_LAST_KERNEL_MULTIPLE",
    "ChannelsLastInstanceNorm",
    "runs_nchw_kernel",
    "use_channels_last_instance_norm",
]

# channel counts that are a multiple of this run the channels-last batch-norm kernel; others run the NCHW one
# (measured on AVX512 CPUs; other devices keep it, unmeasured)
CHANNELS_LAST_KERNEL_MULTIPLE = 16
# the same for CPU tensors: on AVX2 the copies cost more than the slower kernel, so every channel count runs it
CPU_CHANNELS_LAST_KERNEL_MULTIPLE = (
    1 if torch.backends.cpu.get_cpu_capability() == "AVX2" else CHANNELS_LAST_KERNEL_MULTIPLE
)


def runs_nchw_kernel(x: torch.Tensor) -> bool:
    """Whether the per-sample norm of the channels-last ``x`` runs PyTorch's NCHW kernel (between a copy in and out)."""
    multiple = CPU_CHANNELS_LAST_KERNEL_MULTIPLE if x.device.type == "cpu" else CHANNELS_LAST_KERNEL_MULTIPLE
    return x.shape[1] % multiple != 0


class ChannelsLastInstanceNorm(torch.nn.Module):
    """Per-sample instance norm computed by batch norm on each sample (see the module docstring).

    Args:
        num_features: channels C.
        eps: added to the variance.
        affine: learn γ and β (``weight``, ``bias``), as ``torch.nn.InstanceNorm*d``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = False) -> None:
        super().__init__()
        if int(num_features) < 1:
            raise ValueError(f"ChannelsLastInstanceNorm: num_features must be >= 1, got {num_features}")
        self.num_features, self.eps, self.affine = int(num_features), float(eps), bool(affine)
        if self.affine:
            self.weight = torch.nn.Parameter(torch.ones(self.num_features))
            self.bias = torch.nn.Parameter(torch.zeros(self.num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    @classmethod
    def from_instance_norm(cls, norm: torch.nn.modules.instancenorm._InstanceNorm) -> ChannelsLastInstanceNorm:
        """The equal module, sharing ``norm``'s parameters. Instance norms with running statistics are not
        per-sample at evaluation and cannot be replaced."""
        if norm.track_running_stats:
            raise ValueError("ChannelsLastInstanceNorm: an instance norm with running statistics is not per-sample")
        new = cls(norm.num_features, eps=norm.eps, affine=norm.affine)
        if norm.affine:
            new.weight, new.bias = norm.weight, norm.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[1] != self.num_features:
            raise ValueError(
                f"ChannelsLastInstanceNorm: expected (N, {self.num_features}, *spatial), got {tuple(x.shape)}"
            )
        # autocast off: it would run batch norm in float32 and return float32; the kernel already accumulates
        # bf16 inputs in float32 and takes float32 weights
        with torch.autocast(x.device.type, enabled=False):
            return _PerSampleBatchNorm.apply(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"


class _PerSampleBatchNorm(torch.autograd.Function):
    """Training-mode batch norm of each sample ``x[n:n+1]`` on its own (= instance norm), every sample's forward kernel
    writing into its slice of one output (the ``out=`` variant of ATen's ``native_batch_norm``), so that the forward
    does not concatenate per-sample results. Values are those of
    ``torch.cat([F.batch_norm(s, None, None, weight, bias, True, 0.0, eps) for s in x.split(1)])`` bit for bit, with
    ``x`` in NCHW layout when it is channels-last and :func:`runs_nchw_kernel` says so (its channel count is not a
    multiple of the device's); the output and the gradient are in ``x``'s layout."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):  # type: ignore[override]
        layout = CHANNELS_LAST.get(x.dim())
        ctx.layout = layout if layout is not None and x.is_contiguous(memory_format=layout) else None
        if ctx.layout is not None and runs_nchw_kernel(x):
            x = x.contiguous()  # the NCHW kernel (see the module docstring); the output goes back to channels-last
        out = torch.empty_like(x)
        # the kernel keeps the statistics in the weight's dtype, or the input's without weights
        stats_dtype = x.dtype if weight is None else weight.dtype
        means = x.new_empty((x.shape[0], x.shape[1]), dtype=stats_dtype)
        inv_stds = torch.empty_like(means)
        for n in range(x.shape[0]):
            torch.ops.aten.native_batch_norm.out(
                x[n : n + 1], weight, bias, None, None, True, 0.0, eps,
                out=out[n : n + 1], save_mean=means[n], save_invstd=inv_stds[n],
            )  # fmt: skip
        ctx.save_for_backward(x, weight, means, inv_stds)
        ctx.eps = eps
        return out if ctx.layout is None else out.contiguous(memory_format=ctx.layout)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, weight, means, inv_stds = ctx.saved_tensors
        # in the layout the kernel ran in (a concatenation's gradient arrives as a strided slice)
        if x.is_contiguous():
            grad = grad.contiguous()
        elif ctx.layout is not None:
            grad = grad.contiguous(memory_format=ctx.layout)
        # ATen's out= variant of the backward computes into a new tensor and copies, so the per-sample results are
        # concatenated (one copy, none for one sample)
        mask = [True, weight is not None, weight is not None]
        samples = [
            torch.ops.aten.native_batch_norm_backward(
                grad[n : n + 1], x[n : n + 1], weight, None, None, means[n], inv_stds[n], True, ctx.eps, mask
            )
            for n in range(x.shape[0])
        ]
        grad_x = samples[0][0] if len(samples) == 1 else torch.cat([sample[0] for sample in samples])
        if ctx.layout is not None:
            grad_x = grad_x.contiguous(memory_format=ctx.layout)
        if weight is None:
            return grad_x, None, None, None
        return grad_x, sum(sample[1] for sample in samples), sum(sample[2] for sample in samples), None


def use_channels_last_instance_norm(module: torch.nn.Module) -> torch.nn.Module:
    """Replace, in place, every per-sample instance norm under ``module`` by the equal
    :class:`ChannelsLastInstanceNorm` (the parameters are shared, their names unchanged); returns ``module``."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.modules.instancenorm._InstanceNorm) and not child.track_running_stats:
            setattr(module, name, ChannelsLastInstanceNorm.from_instance_norm(child))
        else:
            use_channels_last_instance_norm(child)
    return module
