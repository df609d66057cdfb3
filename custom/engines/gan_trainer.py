"""Base of the adversarial trainers: what every GAN step shares, so a new step (Pix2Pix, CycleGAN) is only its math.

A subclass names its networks and optimizers and writes ``_iteration``; this class gives it:

- mixed precision (``precision``): ``"fp32"``; ``"bf16"`` (``torch.autocast`` with bfloat16, on CPUs with bf16
  support, e.g. AVX512-BF16/AMX, and recent GPUs; no loss scaling needed); ``"fp16"`` (CUDA only, with one
  ``GradScaler`` per optimizer); ``"auto"`` (bf16 where the device computes it in hardware, else fp32:
  :mod:`custom.networks.precision`); ``amp=True`` is MONAI's spelling of ``"fp16"`` and is ignored on CPU;
  ``update(name, loss)`` = zero_grad, backward (scaled), step;
- ``frozen(*networks)``: ``requires_grad`` off for the networks only while the generator step runs;
- per-term epoch averages in ``engine.state.metrics`` (Ignite ``Average`` over the iterations of an epoch), attached
  before the handlers so that MONAI's ``StatsHandler``/``TensorBoardStatsHandler``/``MLFlowHandler`` read this
  epoch's values at ``EPOCH_COMPLETED``;
- ``publish(output)``: the iteration output decollated (one dict per sample, as MONAI's ``SupervisedTrainer``) with
  MONAI's iteration events, so ``--tracking mlflow`` and the stats handlers work;
- ``state_dict``/``load_state_dict`` with the scalers, for ``custom.handlers.ResumableCheckpoint``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from ignite.metrics import Average
from monai.engines import Trainer
from monai.engines.utils import IterationEvents
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader

from custom.networks.precision import resolve_precision

__all__ = ["GanTrainer"]


class GanTrainer(Trainer):
    """Shared machinery of the GAN trainers (see the module docstring).

    Args:
        device: device to train on.
        max_epochs: number of epochs.
        train_data_loader: the training batches.
        optimizers: ``{name: optimizer}``; ``update(name, loss)`` steps one of them.
        loss_names: the names of the values averaged per epoch (``loss_g``, ``loss_d``, ``loss_<term>``, ...).
        epoch_length: iterations per epoch, default ``len(train_data_loader)``.
        non_blocking: non-blocking host-to-device copies.
        train_handlers: Ignite/MONAI handlers to attach.
        amp: fp16 mixed precision on CUDA (ignored on CPU); same as ``precision="fp16"``.
        optim_set_to_none: ``zero_grad(set_to_none=...)``.
        precision: ``"fp32"`` (default), ``"bf16"``, ``"fp16"`` (CUDA only) or ``"auto"``, see the module docstring;
            ``self.precision`` is the one in use (``"auto"`` resolved).
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: DataLoader,
        optimizers: Mapping[str, Optimizer],
        loss_names: Sequence[str],
        epoch_length: int | None = None,
        non_blocking: bool = False,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        optim_set_to_none: bool = True,
        precision: str = "fp32",
    ) -> None:
        if len(set(loss_names)) != len(loss_names):
            raise ValueError(f"loss names must be unique, got {list(loss_names)}.")
        requested, precision = precision, resolve_precision(precision, device)
        device_type = torch.device(device).type
        if bool(amp) and device_type == "cuda" and precision == "fp32":
            precision = "fp16"
        if precision == "fp16" and device_type != "cuda":
            raise ValueError("precision 'fp16' needs a CUDA device; use 'bf16' on a CPU.")
        self.precision, self.device_type = precision, device_type
        amp = precision == "fp16"
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            amp=amp,
            decollate=True,  # per-sample output items, as MONAI's handlers (and --tracking mlflow) expect
        )
        if requested == "auto":
            self.logger.info(f"precision {requested}: {precision} on {device} (bf16 only where the hardware has it)")
        self.optimizers = dict(optimizers)
        self.scalers = {name: torch.amp.GradScaler("cuda") for name in self.optimizers} if amp else {}
        self.loss_names = tuple(loss_names)
        self.optim_set_to_none = optim_set_to_none
        for name in self.loss_names:
            Average(output_transform=lambda out, key=name: out[0][key], device="cpu").attach(self, name)
        if train_handlers is not None:
            self._register_handlers(train_handlers)

    def autocast(self):
        """Mixed-precision context of the forward passes (a no-op in fp32)."""
        if self.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device_type, dtype=dtype)

    @staticmethod
    @contextmanager
    def frozen(*networks: torch.nn.Module) -> Iterator[None]:
        """No parameter gradients for ``networks`` inside the block (the discriminators during the generator step)."""
        for network in networks:
            network.requires_grad_(False)
        try:
            yield
        finally:
            for network in networks:
                network.requires_grad_(True)

    def update(self, name: str, loss: torch.Tensor, after_backward: bool = False) -> None:
        """Zero the gradients of optimizer ``name``, back-propagate ``loss`` (scaled with amp) and step.

        ``after_backward`` fires MONAI's ``BACKWARD_COMPLETED`` between backward and step (the generator update).
        """
        optimizer, scaler = self.optimizers[name], self.scalers.get(name)
        optimizer.zero_grad(set_to_none=self.optim_set_to_none)
        (loss if scaler is None else scaler.scale(loss)).backward()
        if after_backward:
            self.fire_event(IterationEvents.BACKWARD_COMPLETED)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()

    def publish(self, output: dict[str, Any], losses: Mapping[str, torch.Tensor | float]) -> dict[str, Any]:
        """Set ``state.output`` to ``output`` plus every loss value as a float, then fire ``MODEL_COMPLETED`` (MONAI
        decollates the output on it); returns the (decollated) output."""
        missing = set(self.loss_names) - set(losses)
        if missing:
            raise KeyError(f"{type(self).__name__}: no value for {sorted(missing)} in this iteration.")
        output.update(
            {
                name: float(value.detach() if isinstance(value, torch.Tensor) else value)
                for name, value in losses.items()
            }
        )
        self.state.output = output
        self.fire_event(IterationEvents.MODEL_COMPLETED)
        return self.state.output

    def state_dict(self) -> dict:
        """Engine progress plus the scalers (with amp), for ``custom.handlers.ResumableCheckpoint``."""
        state = super().state_dict()
        if self.scalers:
            state["scalers"] = {name: scaler.state_dict() for name, scaler in self.scalers.items()}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        scalers = state_dict.pop("scalers", None)
        super().load_state_dict(state_dict)
        for name, state in (scalers or {}).items():
            if name in self.scalers:
                self.scalers[name].load_state_dict(state)
