"""Conditional GAN (Pix2Pix) step for paired image translation (MR -> CT), with an open generator loss recipe.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017;
Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs" (pix2pixHD), CVPR 2018.

One iteration, with x the MR, y the CT, m the body mask (when the batch has one) and G, D the networks:

    fake = G(x)
    D step:  L_D = d_loss(D([x, y]), D([x, fake.detach()]))          e.g. 0.5 · (LSGAN(real) + LSGAN(fake))
    G step:  L_G = sum_k w_k · term_k(namespace)                     (custom.losses.LossRecipe)

The generator terms read the namespace ``image`` (x), ``label`` (y), ``pred`` (fake), ``mask`` (m or None),
``d_fake`` (D([x, fake]), with gradients to G) and ``d_real`` (D([x, y]) of the D step, for feature matching), so
L1, NGF, SSIM, feature matching, a background term or any MONAI loss is configuration, not code. The discriminator is
conditional by default (it sees the MR concatenated with a CT); ``conditional=False`` shows it the CT alone. MONAI's
``GanTrainer`` is unconditional and its ``AdversarialTrainer`` reconstructs its input, hence this step.

Every loss term of an iteration is in each item of ``engine.state.output`` and its epoch average in
``engine.state.metrics``: ``loss_g``, ``loss_d`` and ``loss_<term>`` for every term of the recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from monai.engines.utils import IterationEvents
from monai.utils.enums import CommonKeys as Keys
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader

from custom.engines.gan_trainer import GanTrainer
from custom.losses import LossRecipe, LossTerm

__all__ = ["Pix2PixTrainer"]


class Pix2PixTrainer(GanTrainer):
    """Pix2Pix trainer: a discriminator step, then a generator step on a configurable loss recipe.

    Args:
        device: device to train on.
        max_epochs: number of epochs.
        train_data_loader: yields dicts with ``image_key`` (MR), ``label_key`` (CT) and optionally ``mask_key``.
        g_network: generator, MR -> CT.
        g_optimizer: generator optimizer.
        d_network: discriminator taking ``cat([MR, CT], dim=1)`` (or the CT alone if not ``conditional``).
        d_optimizer: discriminator optimizer.
        d_loss: ``d_loss(d_real, d_fake)``, e.g. ``custom.losses.DiscriminatorAdversarialLoss(adversarial_loss)``.
        g_losses: the generator loss recipe, ``{name: LossTerm or its arguments as a dict}`` (see
            ``custom.losses.LossRecipe``).
        conditional: the discriminator sees the MR with the CT.
        image_key, label_key, mask_key: batch keys.
        engine_kwargs: ``epoch_length``, ``non_blocking``, ``train_handlers``, ``amp``, ``optim_set_to_none`` of
            ``custom.engines.GanTrainer``.
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
        d_loss: Callable,
        g_losses: LossRecipe | Mapping[str, LossTerm | Mapping[str, Any]],
        conditional: bool = True,
        image_key: str = Keys.IMAGE,
        label_key: str = Keys.LABEL,
        mask_key: str = "mask",
        **engine_kwargs: Any,
    ) -> None:
        self.g_losses = g_losses if isinstance(g_losses, LossRecipe) else LossRecipe(g_losses)
        self.g_network, self.d_network = g_network, d_network
        self.d_loss = d_loss
        self.conditional = bool(conditional)
        self.image_key, self.label_key, self.mask_key = image_key, label_key, mask_key
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            optimizers={"g": g_optimizer, "d": d_optimizer},
            loss_names=["loss_g", "loss_d", *self.g_losses.names],
            **engine_kwargs,
        )

    @property
    def g_optimizer(self) -> Optimizer:
        return self.optimizers["g"]

    @property
    def d_optimizer(self) -> Optimizer:
        return self.optimizers["d"]

    def _d_input(self, mr: torch.Tensor, ct: torch.Tensor) -> torch.Tensor:
        return torch.cat([mr, ct], dim=1) if self.conditional else ct

    def _iteration(self, engine: Pix2PixTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        device, nb = engine.state.device, engine.non_blocking
        mr = batchdata[engine.image_key].to(device, non_blocking=nb).float()
        ct = batchdata[engine.label_key].to(device, non_blocking=nb).float()
        mask = batchdata.get(engine.mask_key)
        mask = None if mask is None else (mask.to(device, non_blocking=nb) > 0).float()

        engine.g_network.train()
        engine.d_network.train()
        with engine.autocast():
            fake = engine.g_network(mr)
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)

        # Discriminator: real pairs towards "real", synthetic pairs towards "fake".
        with engine.autocast():
            d_real = engine.d_network(engine._d_input(mr, ct))
            loss_d = engine.d_loss(d_real, engine.d_network(engine._d_input(mr, fake.detach())))
        engine.update("d", loss_d)

        # Generator: the recipe's terms, the discriminator frozen.
        with engine.frozen(engine.d_network):
            with engine.autocast():
                namespace = {"image": mr, "label": ct, "pred": fake, "mask": mask, "d_real": d_real}
                namespace["d_fake"] = engine.d_network(engine._d_input(mr, fake))
                loss_g, terms = engine.g_losses(namespace)
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
            engine.update("g", loss_g, after_backward=True)

        output: dict[str, Any] = {Keys.IMAGE: mr, Keys.LABEL: ct, Keys.PRED: fake.detach(), Keys.LOSS: loss_g.item()}
        if mask is not None:
            output["mask"] = mask
        return engine.publish(output, {"loss_g": loss_g.item(), "loss_d": loss_d.item(), **terms})
