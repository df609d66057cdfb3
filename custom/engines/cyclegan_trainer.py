"""CycleGAN step for unpaired MR <-> CT translation, with an open generator loss recipe (CC and shape terms).

Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks", ICCV 2017;
Ge et al., "Unpaired whole-body MR to CT synthesis with correlation coefficient constrained adversarial learning",
SPIE Medical Imaging 2019 (the correlation-coefficient and shape terms).

One iteration, with x an MR slice, y a CT slice of ANOTHER patient, G_ct: MR -> CT, G_mr: CT -> MR, D_ct, D_mr
unconditional discriminators and P_ct, P_mr image pools (``custom.engines.ImagePool``):

    fake_ct = G_ct(x), fake_mr = G_mr(y), rec_mr = G_mr(fake_ct), rec_ct = G_ct(fake_mr)
    idt_ct = G_ct(y), idt_mr = G_mr(x)                   (only when a term of non-zero weight reads them)
    G step (D_ct, D_mr frozen):  L_G = sum_k w_k · term_k(namespace)          (custom.losses.LossRecipe)
    D step:  L_D = d_loss(D_ct(T(y)), D_ct(T(P_ct(fake_ct)))) + d_loss(D_mr(T(x)), D_mr(T(P_mr(fake_mr))))

with T the optional ``discriminator_augment`` (identity by default; ``custom.engines.DiffAugment``).

The generator terms read the namespace ``real_mr`` (x), ``real_ct`` (y), ``fake_ct``, ``fake_mr``, ``rec_mr``,
``rec_ct``, ``idt_ct``, ``idt_mr``, ``mr_mask`` (the MR's body mask, also ``mask``), ``ct_mask`` (the CT's, or None),
``d_ct_fake`` = D_ct(T(fake_ct)) and ``d_mr_fake`` = D_mr(T(fake_mr)) (with gradients to the generators). The
issue's loss

    GAN_CT + GAN_MR + λ_cyc (cyc_MR + cyc_CT) + λ_idt λ_cyc (idt_CT + idt_MR) + λ_cc (CC(fake_ct, x) + CC(fake_mr, y))
    + λ_shape shape(fake_ct, mr_mask)

is the bundle's ``generator_losses`` (``bundles/cyclegan_cc/configs/train.json``), not code. One optimizer steps both
generators, one both discriminators (as in CycleGAN); the generator step comes first, then the discriminators see
the same synthetic images through their pools.

Logged per iteration (``engine.state.output``) and per epoch (``engine.state.metrics``): ``loss_g``, ``loss_d``
(= ``loss_d_ct + loss_d_mr``), ``loss_d_ct``, ``loss_d_mr`` and ``loss_<term>`` for every term of the recipe. The
output also has ``image`` (MR), ``label`` (the unpaired CT), ``pred`` (sCT), ``fake_mr``, ``rec_mr`` and ``mask``.
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
from custom.engines.image_pool import ImagePool
from custom.losses import LossRecipe, LossTerm

__all__ = ["CycleGanTrainer"]


class CycleGanTrainer(GanTrainer):
    """CycleGAN trainer on the shared GAN engine: a generator step on a loss recipe, then a discriminator step.

    Args:
        device: device to train on.
        max_epochs: number of epochs.
        train_data_loader: yields dicts with ``image_key`` (MR slices), ``label_key`` (CT slices, unpaired),
            optionally ``mask_key`` (MR body masks) and ``ct_mask_key`` (CT body masks),
            e.g. ``custom.data.UnpairedDataset``.
        generator_ct: MR -> CT generator (the bundle's ``network_def``).
        generator_mr: CT -> MR generator.
        discriminator_ct: unconditional CT discriminator (``in_channels=1``).
        discriminator_mr: unconditional MR discriminator.
        g_optimizer: optimizer of both generators' parameters.
        d_optimizer: optimizer of both discriminators' parameters.
        d_loss: ``d_loss(d_real, d_fake)``, e.g. ``custom.losses.DiscriminatorAdversarialLoss(adversarial_loss)``.
        g_losses: the generator loss recipe (see the module docstring and ``custom.losses.LossRecipe``).
        pool_size: images in each discriminator's history pool (0: none).
        discriminator_augment: applied to every image a discriminator sees, real and synthetic, in both steps (e.g.
            ``custom.engines.DiffAugment``: data-efficient GAN training); None: none.
        image_key, label_key, mask_key, ct_mask_key: batch keys.
        engine_kwargs: ``epoch_length``, ``non_blocking``, ``train_handlers``, ``amp``, ``optim_set_to_none``,
            ``precision`` of ``custom.engines.GanTrainer``.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: DataLoader,
        generator_ct: torch.nn.Module,
        generator_mr: torch.nn.Module,
        discriminator_ct: torch.nn.Module,
        discriminator_mr: torch.nn.Module,
        g_optimizer: Optimizer,
        d_optimizer: Optimizer,
        d_loss: Callable,
        g_losses: LossRecipe | Mapping[str, LossTerm | Mapping[str, Any]],
        pool_size: int = 50,
        discriminator_augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        image_key: str = Keys.IMAGE,
        label_key: str = Keys.LABEL,
        mask_key: str = "mask",
        ct_mask_key: str = "ct_mask",
        **engine_kwargs: Any,
    ) -> None:
        self.g_losses = g_losses if isinstance(g_losses, LossRecipe) else LossRecipe(g_losses)
        self.generator_ct, self.generator_mr = generator_ct, generator_mr
        self.discriminator_ct, self.discriminator_mr = discriminator_ct, discriminator_mr
        self.pool_ct, self.pool_mr = ImagePool(pool_size), ImagePool(pool_size)
        self.d_loss = d_loss
        self.augment = discriminator_augment if discriminator_augment is not None else torch.nn.Identity()
        self.keys = {"real_mr": image_key, "real_ct": label_key, "mr_mask": mask_key, "ct_mask": ct_mask_key}
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            optimizers={"g": g_optimizer, "d": d_optimizer},
            loss_names=["loss_g", "loss_d", "loss_d_ct", "loss_d_mr", *self.g_losses.names],
            **engine_kwargs,
        )

    def state_dict(self) -> dict:
        """Engine progress and scalers (``GanTrainer``) plus both image pools, so a resumed run keeps its history."""
        return {**super().state_dict(), "pools": {"ct": self.pool_ct.state_dict(), "mr": self.pool_mr.state_dict()}}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        pools = state_dict.pop("pools", None)
        super().load_state_dict(state_dict)
        if pools is not None:
            self.pool_ct.load_state_dict(pools["ct"])
            self.pool_mr.load_state_dict(pools["mr"])

    def _inputs(self, batchdata: Mapping[str, Any]) -> dict[str, torch.Tensor | None]:
        """The batch's MR, CT (float) and masks (0/1, or None when absent) on the device, by namespace name."""
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        inputs: dict[str, torch.Tensor | None] = {}
        for name, key in self.keys.items():
            value = batchdata.get(key)
            if value is None and not name.endswith("_mask"):
                raise KeyError(f"CycleGanTrainer: the batch has no {key!r} ({name}); keys: {sorted(batchdata)}.")
            if value is not None:
                value = value.to(self.state.device, non_blocking=self.non_blocking)
                value = (value > 0).float() if name.endswith("_mask") else value.float()
            inputs[name] = value
        return inputs

    def _iteration(self, engine: CycleGanTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        ns = engine._inputs(batchdata)
        ns["mask"] = ns["mr_mask"]
        g_ct, g_mr = engine.generator_ct, engine.generator_mr
        d_ct, d_mr = engine.discriminator_ct, engine.discriminator_mr
        aug = engine.augment
        for network in (g_ct, g_mr, d_ct, d_mr):
            network.train()
        with engine.autocast():
            ns["fake_ct"], ns["fake_mr"] = g_ct(ns["real_mr"]), g_mr(ns["real_ct"])
            ns["rec_mr"], ns["rec_ct"] = g_mr(ns["fake_ct"]), g_ct(ns["fake_mr"])
            for name, generator, source in (("idt_ct", g_ct, "real_ct"), ("idt_mr", g_mr, "real_mr")):
                if engine.g_losses.needs(name):
                    ns[name] = generator(ns[source])
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)

        # Generators: the recipe's terms, both discriminators frozen.
        with engine.frozen(d_ct, d_mr):
            with engine.autocast():
                ns["d_ct_fake"], ns["d_mr_fake"] = d_ct(aug(ns["fake_ct"])), d_mr(aug(ns["fake_mr"]))
                loss_g, terms = engine.g_losses(ns)
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
            engine.update("g", loss_g, after_backward=True)

        # Discriminators: real towards "real", pooled synthetic images towards "fake".
        with engine.autocast():
            loss_d_ct = engine.d_loss(d_ct(aug(ns["real_ct"])), d_ct(aug(engine.pool_ct.query(ns["fake_ct"]))))
            loss_d_mr = engine.d_loss(d_mr(aug(ns["real_mr"])), d_mr(aug(engine.pool_mr.query(ns["fake_mr"]))))
        engine.update("d", loss_d_ct + loss_d_mr)

        output: dict[str, Any] = {
            Keys.IMAGE: ns["real_mr"],
            Keys.LABEL: ns["real_ct"],
            Keys.PRED: ns["fake_ct"].detach(),
            "fake_mr": ns["fake_mr"].detach(),
            "rec_mr": ns["rec_mr"].detach(),
            Keys.LOSS: loss_g.item(),
        }
        if ns["mr_mask"] is not None:
            output["mask"] = ns["mr_mask"]
        losses = {"loss_g": loss_g.item(), "loss_d_ct": loss_d_ct.item(), "loss_d_mr": loss_d_mr.item()}
        return engine.publish(output, {**losses, "loss_d": losses["loss_d_ct"] + losses["loss_d_mr"], **terms})
