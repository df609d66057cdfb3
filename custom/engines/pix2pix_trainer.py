"""Conditional GAN (Pix2Pix) trainer for paired image translation (MR -> CT).

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017;
Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs" (pix2pixHD), CVPR 2018.

One iteration, with x the MR, y the CT, m the body mask (ones when the batch has none) and G, D the networks:

    fake = G(x)
    D step:  L_D = 0.5 * (adv(D([x, y]), real) + adv(D([x, fake.detach()]), fake))
    G step:  L_G = λ_adv·adv(D([x, fake]), real) + λ_L1·L1(fake, y) + λ_NGF·NGF(fake, y)
                   + λ_FM·FM(D([x, y]), D([x, fake])) + λ_bg·mean(|fake - air| · (1 - m))

The discriminator is conditional: it sees the MR concatenated with a CT (real or synthetic). With
``mask_losses=True`` the L1 and NGF terms are averaged inside the mask only (the anatomy), and the background term
pushes the synthetic CT to air outside it. MONAI's ``GanTrainer`` is unconditional and its ``AdversarialTrainer``
reconstructs its input, hence this trainer.

Every loss term of an iteration is in each item of ``engine.state.output`` (decollated, one item per sample, as for
MONAI's ``SupervisedTrainer``) and its epoch average in ``engine.state.metrics``
(``loss_g``, ``loss_d``, ``loss_adv``, ``loss_l1``, ``loss_ngf``, ``loss_fm``, ``loss_bg``), so MONAI's
``StatsHandler``, ``TensorBoardStatsHandler`` and ``MLFlowHandler`` log them from JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from ignite.metrics import Average
from monai.engines import Trainer
from monai.engines.utils import IterationEvents
from monai.utils.enums import CommonKeys as Keys
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader

__all__ = ["Pix2PixTrainer", "LOSS_NAMES", "discriminator_logits"]

LOSS_NAMES = ("loss_g", "loss_d", "loss_adv", "loss_l1", "loss_ngf", "loss_fm", "loss_bg")


def discriminator_logits(out: Any) -> list[torch.Tensor]:
    """Per-scale logits of a patch discriminator's output, for MONAI's ``PatchAdversarialLoss``.

    Accepts MONAI's ``PatchDiscriminator`` output (a list of features, logits last), a list of such lists (one per
    scale, ``custom.networks.MultiScaleDiscriminator``) and MONAI's ``MultiScalePatchDiscriminator`` output (a tuple
    ``(logits, features)``).
    """
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], list):
        return list(out[0])
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out[0], torch.Tensor):
        return [out[-1]]
    return [scale[-1] for scale in out]


def _masked_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return values.mean()
    weights = weights.expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


class Pix2PixTrainer(Trainer):
    """Pix2Pix trainer: conditional patch discriminator, adversarial + L1 + NGF (+ feature matching, background).

    Args:
        device: device to train on.
        max_epochs: number of epochs.
        train_data_loader: yields dicts with ``image_key`` (MR), ``label_key`` (CT) and optionally ``mask_key``.
        g_network: generator, MR -> CT, both in [-1, 1].
        g_optimizer: generator optimizer.
        d_network: discriminator taking ``cat([MR, CT], dim=1)``; a MONAI ``PatchDiscriminator`` or
            ``custom.networks.MultiScaleDiscriminator``.
        d_optimizer: discriminator optimizer.
        adversarial_loss: e.g. MONAI ``PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)``.
        recon_loss: element-wise reconstruction loss with ``reduction="none"``; default ``torch.nn.L1Loss``.
        ngf_loss: ``custom.losses.NGFLoss`` (or any ``loss(pred, target, mask=...)``); required if ``lambda_ngf > 0``.
        feature_matching_loss: ``loss(real_output, fake_output)`` on the discriminator's raw outputs, e.g.
            ``custom.losses.feature_matching_loss`` (it detaches the real features); required if ``lambda_fm > 0``.
        lambda_adv, lambda_recon, lambda_ngf, lambda_fm, lambda_background: loss weights (see module docstring).
        mask_losses: average the L1 and NGF terms inside the body mask only.
        background_value: value of air in the normalised CT (``-1`` for a window starting at -1024 HU).
        image_key, label_key, mask_key: batch keys.
        epoch_length: iterations per epoch, default ``len(train_data_loader)``.
        non_blocking: non-blocking host-to-device copies.
        train_handlers: Ignite/MONAI handlers to attach.
        amp: mixed precision (CUDA only; ignored on CPU).
        optim_set_to_none: ``zero_grad(set_to_none=...)``.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: DataLoader,
        g_network: torch.nn.Module,
        g_optimizer: Optimizer,
        d_network: torch.nn.Module,
        d_optimizer: Optimizer,
        adversarial_loss: Callable,
        recon_loss: Callable | None = None,
        ngf_loss: Callable | None = None,
        feature_matching_loss: Callable | None = None,
        lambda_adv: float = 1.0,
        lambda_recon: float = 100.0,
        lambda_ngf: float = 0.0,
        lambda_fm: float = 0.0,
        lambda_background: float = 0.0,
        mask_losses: bool = False,
        background_value: float = -1.0,
        image_key: str = Keys.IMAGE,
        label_key: str = Keys.LABEL,
        mask_key: str = "mask",
        epoch_length: int | None = None,
        non_blocking: bool = False,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        optim_set_to_none: bool = True,
    ) -> None:
        for name, value in (
            ("lambda_adv", lambda_adv),
            ("lambda_recon", lambda_recon),
            ("lambda_ngf", lambda_ngf),
            ("lambda_fm", lambda_fm),
            ("lambda_background", lambda_background),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}.")
        if lambda_ngf > 0 and ngf_loss is None:
            raise ValueError("lambda_ngf > 0 needs an ngf_loss (e.g. custom.losses.NGFLoss).")
        if lambda_fm > 0 and feature_matching_loss is None:
            raise ValueError("lambda_fm > 0 needs a feature_matching_loss (e.g. custom.losses.feature_matching_loss).")
        amp = bool(amp) and torch.device(device).type == "cuda"
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            amp=amp,
            decollate=True,  # per-sample output items, as MONAI's handlers (and --tracking mlflow) expect
        )
        self.g_network = g_network
        self.g_optimizer = g_optimizer
        self.d_network = d_network
        self.d_optimizer = d_optimizer
        self.adversarial_loss = adversarial_loss
        self.recon_loss = recon_loss if recon_loss is not None else torch.nn.L1Loss(reduction="none")
        self.ngf_loss = ngf_loss
        self.feature_matching_loss = feature_matching_loss
        self.lambda_adv = lambda_adv
        self.lambda_recon = lambda_recon
        self.lambda_ngf = lambda_ngf
        self.lambda_fm = lambda_fm
        self.lambda_background = lambda_background
        self.mask_losses = mask_losses
        self.background_value = background_value
        self.image_key, self.label_key, self.mask_key = image_key, label_key, mask_key
        self.optim_set_to_none = optim_set_to_none
        self.g_scaler = torch.amp.GradScaler("cuda") if amp else None
        self.d_scaler = torch.amp.GradScaler("cuda") if amp else None
        # epoch averages of every loss term; attached before the handlers so that the stats/TensorBoard/MLflow
        # handlers read this epoch's values at EPOCH_COMPLETED
        for name in LOSS_NAMES:
            Average(output_transform=lambda out, key=name: out[0][key], device="cpu").attach(self, name)
        if train_handlers is not None:
            self._register_handlers(train_handlers)

    def _autocast(self):
        return torch.autocast("cuda") if self.amp else nullcontext()

    def _backward(self, loss: torch.Tensor, scaler: torch.amp.GradScaler | None) -> None:
        (loss if scaler is None else scaler.scale(loss)).backward()

    def _optimizer_step(self, optimizer: Optimizer, scaler: torch.amp.GradScaler | None) -> None:
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()

    def _iteration(self, engine: Pix2PixTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        device, nb = engine.state.device, engine.non_blocking
        mr = batchdata[engine.image_key].to(device, non_blocking=nb).float()
        ct = batchdata[engine.label_key].to(device, non_blocking=nb).float()
        mask = batchdata.get(engine.mask_key)
        mask = None if mask is None else (mask.to(device, non_blocking=nb) > 0).float()
        loss_mask = mask if engine.mask_losses else None

        engine.g_network.train()
        engine.d_network.train()
        with engine._autocast():
            fake = engine.g_network(mr)
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)

        # Discriminator: real pairs towards "real", synthetic pairs towards "fake".
        engine.d_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with engine._autocast():
            real_out = engine.d_network(torch.cat([mr, ct], dim=1))
            fake_out = engine.d_network(torch.cat([mr, fake.detach()], dim=1))
            loss_d = 0.5 * (
                engine.adversarial_loss(discriminator_logits(real_out), target_is_real=True, for_discriminator=True)
                + engine.adversarial_loss(discriminator_logits(fake_out), target_is_real=False, for_discriminator=True)
            )
        engine._backward(loss_d, engine.d_scaler)
        engine._optimizer_step(engine.d_optimizer, engine.d_scaler)

        # Generator: fool the discriminator and match the CT.
        engine.d_network.requires_grad_(False)
        engine.g_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with engine._autocast():
            fake_out = engine.d_network(torch.cat([mr, fake], dim=1))
            terms = {
                "loss_adv": engine.adversarial_loss(
                    discriminator_logits(fake_out), target_is_real=True, for_discriminator=False
                ),
                "loss_l1": _masked_mean(engine.recon_loss(fake.float(), ct), loss_mask),
            }
            zero = fake.new_zeros(())
            terms["loss_ngf"] = engine.ngf_loss(fake.float(), ct, mask=loss_mask) if engine.lambda_ngf > 0 else zero
            # feature matching compares the discriminator's intermediate features of real and synthetic pairs
            terms["loss_fm"] = engine.feature_matching_loss(real_out, fake_out) if engine.lambda_fm > 0 else zero
            if engine.lambda_background > 0 and mask is not None:
                terms["loss_bg"] = _masked_mean((fake.float() - engine.background_value).abs(), 1.0 - mask)
            else:
                terms["loss_bg"] = zero
            loss_g = (
                engine.lambda_adv * terms["loss_adv"]
                + engine.lambda_recon * terms["loss_l1"]
                + engine.lambda_ngf * terms["loss_ngf"]
                + engine.lambda_fm * terms["loss_fm"]
                + engine.lambda_background * terms["loss_bg"]
            )
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        engine._backward(loss_g, engine.g_scaler)
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        engine._optimizer_step(engine.g_optimizer, engine.g_scaler)
        engine.d_network.requires_grad_(True)

        output: dict[str, Any] = {Keys.IMAGE: mr, Keys.LABEL: ct, Keys.PRED: fake.detach(), Keys.LOSS: loss_g.item()}
        output["loss_g"], output["loss_d"] = loss_g.item(), loss_d.item()
        output.update({name: float(value.item()) for name, value in terms.items()})
        if mask is not None:
            output["mask"] = mask
        engine.state.output = output
        engine.fire_event(IterationEvents.MODEL_COMPLETED)  # MONAI decollates the output on this event
        return engine.state.output

    def state_dict(self) -> dict:
        """Engine progress plus both scalers (when ``amp``), for ``custom.handlers.ResumableCheckpoint``."""
        state = super().state_dict()
        if self.g_scaler is not None:
            state["g_scaler"], state["d_scaler"] = self.g_scaler.state_dict(), self.d_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        g_scaler, d_scaler = state_dict.pop("g_scaler", None), state_dict.pop("d_scaler", None)
        super().load_state_dict(state_dict)
        if self.g_scaler is not None and g_scaler is not None:
            self.g_scaler.load_state_dict(g_scaler)
            self.d_scaler.load_state_dict(d_scaler)
