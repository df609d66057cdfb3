"""cyclegan_cc: the correlation-coefficient and shape losses, the image pool, unpaired data (CT re-drawn against the MR
every epoch), the CycleGAN step, and training through ``ConfigWorkflow`` on a paired datalist used as unpaired and on
an ``unpaired``-layout datalist. What every bundle must do (self-describing model, ``custom infer``, evaluation,
metadata) is in ``test_bundles.py``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import ROOT, train_workflow
from monai.losses import PatchAdversarialLoss
from torch.utils.data import DataLoader

from custom.data.unpaired import UnpairedDataset, UnpairedSampler, paired_items, unpaired_items
from custom.engines import CycleGanTrainer, DiffAugment, ImagePool
from custom.errors import InputError
from custom.losses import (
    CorrelationCoefficientLoss,
    DiscriminatorAdversarialLoss,
    GeneratorAdversarialLoss,
    IntensityDistributionLoss,
    LossTerm,
    ShapeConstraintLoss,
    fill_from_four_sides,
)
from custom.networks import Generator, MultiScaleDiscriminator
from custom.transforms import BodyMaskd

BUNDLE = ROOT / "bundles" / "cyclegan_cc"


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ correlation coefficient
def test_cc_is_zero_for_identical_and_negated_images_and_about_one_for_independent_noise():
    x = noise(2, 1, 64, 64)
    cc = CorrelationCoefficientLoss()
    assert float(cc(x, x)) < 1e-5
    assert float(cc(-x, x)) < 1e-5  # 1 - r^2 ignores the sign: bone dark in MR, bright in CT
    assert float(cc(3 * x + 7, x)) < 1e-5  # and offset and scale
    assert float(cc(noise(2, 1, 64, 64, seed=1), x)) == pytest.approx(1.0, abs=0.01)
    signed = CorrelationCoefficientLoss(squared=False)
    assert float(signed(x, x)) < 1e-5
    assert float(signed(-x, x)) == pytest.approx(2.0, abs=1e-5)


def test_cc_per_sample_differs_from_the_batch_when_samples_differ():
    x = noise(2, 1, 32, 32)
    y = torch.stack([x[0], -x[1]])  # each sample perfectly (anti-)correlated, the pooled batch not at all
    assert float(CorrelationCoefficientLoss(per_sample=True)(x, y)) < 1e-5
    assert float(CorrelationCoefficientLoss(per_sample=False)(x, y)) > 0.95
    per_sample = CorrelationCoefficientLoss(squared=False, reduction="none")(x, y)
    assert per_sample.shape == (2,)
    assert per_sample.tolist() == pytest.approx([0.0, 2.0], abs=1e-5)


@pytest.mark.parametrize("squared", [True, False])
def test_cc_gradients_are_finite_on_constant_images(squared):
    cc = CorrelationCoefficientLoss(squared=squared)
    for target in (noise(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)):
        constant = torch.full((2, 1, 16, 16), 0.3, requires_grad=True)
        loss = cc(constant, target)
        loss.backward()
        assert loss.item() == pytest.approx(1.0)  # zero variance: r = 0, "uncorrelated"
        assert torch.isfinite(constant.grad).all()
    # ... and a constant image with a faint pattern of the target becomes correlated, its gradient still finite
    almost = (0.3 + 1e-2 * noise(2, 1, 16, 16)).requires_grad_(True)
    cc(almost, almost.detach()).backward()
    assert torch.isfinite(almost.grad).all()


def test_cc_inside_a_mask_ignores_the_outside():
    x = noise(2, 1, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    y = torch.where(mask > 0, 2 * x, noise(2, 1, 32, 32, seed=1))
    cc = CorrelationCoefficientLoss()
    assert float(cc(x, y, mask=mask)) < 1e-5
    assert float(cc(x, y)) > 0.3
    empty = CorrelationCoefficientLoss(reduction="none")(x, y, mask=torch.zeros_like(mask))
    assert empty.tolist() == [1.0, 1.0]  # nothing to correlate: uncorrelated, not NaN


def test_cc_checks_its_arguments():
    with pytest.raises(ValueError, match="same shape"):
        CorrelationCoefficientLoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="mask must have shape"):
        CorrelationCoefficientLoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), mask=torch.ones(1, 4, 4))
    with pytest.raises(ValueError, match="eps"):
        CorrelationCoefficientLoss(eps=0)


# ------------------------------------------------------------------------------------------------------ shape
def disc(radius: float, size: int = 48, centre: float = 24.0) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (((yy - centre) ** 2 + (xx - centre) ** 2) <= radius**2).float()[None, None]


def synthetic_ct(body: torch.Tensor, hu: float = 40.0) -> torch.Tensor:
    """A CT in [-1, 1] (window [-1024, 3071]): ``hu`` inside ``body``, air outside."""
    inside = -1.0 + 2.0 * (hu + 1024.0) / 4095.0
    return torch.where(body > 0, torch.full_like(body, inside), torch.full_like(body, -1.0))


def test_shape_loss_falls_as_the_outlines_match():
    shape = ShapeConstraintLoss()
    mr_mask = disc(16)
    losses = [float(shape(synthetic_ct(disc(r)), mr_mask)) for r in (6, 10, 13, 16)]
    assert losses == sorted(losses, reverse=True)
    assert losses[-1] < 1e-3 < losses[0]


def test_shape_loss_any_batch_size_and_gradients():
    shape = ShapeConstraintLoss()
    masks = torch.cat([disc(16), disc(12), disc(8, centre=20)])
    fake = synthetic_ct(torch.cat([disc(14), disc(12), disc(10)])).requires_grad_(True)
    batch = shape(fake, masks)
    singles = [float(shape(fake[i : i + 1], masks[i : i + 1])) for i in range(3)]
    assert float(batch) == pytest.approx(sum(singles) / 3, rel=1e-6)
    batch.backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_shape_loss_thresholds_in_hu_with_the_ct_window():
    body = disc(16)
    fat = synthetic_ct(body, hu=-100.0)
    assert float(ShapeConstraintLoss(threshold_hu=-500)(fat, body)) < 1e-3  # fat is body at -500 HU
    assert float(ShapeConstraintLoss(threshold_hu=0)(fat, body)) > 0.2  # not at 0 HU
    other = ShapeConstraintLoss(ct_window=(-1000, 1000), unit_range=(0, 1))
    assert other.to_hu(torch.tensor([0.0, 0.5, 1.0])).tolist() == [-1000.0, 0.0, 1000.0]


def test_shape_loss_compares_outlines_not_the_air_inside():
    body, sinus = disc(16), disc(4, centre=22)
    fake = synthetic_ct(body * (1 - sinus))  # air inside the head: dark in the CT, inside the MR's body mask
    assert float(ShapeConstraintLoss()(fake, body)) < 1e-3
    assert float(ShapeConstraintLoss(fill_holes=False)(fake, body)) > 0.01
    assert torch.equal(fill_from_four_sides(body * (1 - sinus)), body)


def test_shape_loss_pushes_a_bright_background_down():
    """A grey background far above the threshold: the sigmoid outline term has no gradient there; the hinge has."""
    body = disc(16)
    fake = torch.where(body > 0, synthetic_ct(body), torch.full_like(body, 0.0)).requires_grad_(True)  # ~1000 HU
    outside = body[0, 0] == 0
    ShapeConstraintLoss(outside_hinge=False)(fake, body).backward()
    assert fake.grad[0, 0][outside].abs().max() < 1e-12  # saturated: the failure the hinge is for
    fake.grad = None
    loss = ShapeConstraintLoss()(fake, body)
    loss.backward()
    assert (fake.grad[0, 0][outside] > 0).all()  # every background pixel is pushed down
    assert float(loss) > float(ShapeConstraintLoss(outside_hinge=False)(fake, body))


def test_shape_loss_takes_a_frozen_extractor_from_a_checkpoint(tmp_path):
    extractor = torch.nn.Conv2d(1, 1, 3, padding=1)
    torch.save(extractor.state_dict(), tmp_path / "extractor.pt")
    fresh = torch.nn.Conv2d(1, 1, 3, padding=1)
    shape = ShapeConstraintLoss(extractor=fresh, extractor_checkpoint=str(tmp_path / "extractor.pt"))
    assert torch.equal(fresh.weight, extractor.weight) and not fresh.weight.requires_grad
    fake = synthetic_ct(disc(12)).requires_grad_(True)
    expected = torch.sigmoid(extractor(fake))
    assert torch.allclose(shape.soft_mask(fake), expected)
    shape(fake, disc(12)).backward()
    assert fake.grad.abs().sum() > 0 and fresh.weight.grad is None
    with pytest.raises(ValueError, match="extractor"):
        ShapeConstraintLoss(extractor_checkpoint=str(tmp_path / "extractor.pt"))


# ------------------------------------------------------------------------------------------ intensity distribution
def test_intensity_distribution_ignores_where_intensities_are_and_measures_a_shift():
    x = noise(2, 1, 32, 32)
    scrambled = x.flatten(1)[:, torch.randperm(32 * 32)].reshape(x.shape)  # the same intensities, other anatomy
    loss = IntensityDistributionLoss(quantiles=128)
    assert float(loss(x, scrambled)) < 1e-6
    assert float(loss(x + 0.3, x)) == pytest.approx(0.3, abs=1e-5)  # W1 of a shift is the shift
    assert float(loss(x, torch.zeros(2, 1, 16, 16) + x.mean())) > 0.5  # a flat image has not the spread


def test_intensity_distribution_compares_inside_each_images_own_mask():
    body = disc(10.0)  # (1, 1, 48, 48)
    ct = torch.where(body > 0, 0.2, -1.0)
    sct = torch.where(body > 0, 0.2, 0.7)  # the same inside, a wrong background
    shifted_body = torch.roll(body, 5, dims=-1)
    sct_elsewhere = torch.where(shifted_body > 0, 0.2, -1.0)
    loss = IntensityDistributionLoss()
    assert float(loss(sct, ct, body, body)) < 1e-6  # the background is not compared
    assert float(loss(sct_elsewhere, ct, shifted_body, body)) < 1e-6  # masks need not coincide
    assert float(loss(sct, ct)) > 0.1  # without masks the background counts


def test_intensity_distribution_gradients_and_empty_masks():
    x = noise(2, 1, 24, 24).requires_grad_()
    mask = torch.ones(2, 1, 24, 24)
    mask[1] = 0  # the second sample has nothing inside
    value = IntensityDistributionLoss()(x, noise(2, 1, 24, 24, seed=1) + 1.0, mask, torch.ones(2, 1, 24, 24))
    value.backward()
    assert torch.isfinite(x.grad).all() and x.grad[0].abs().sum() > 0 and x.grad[1].abs().sum() == 0
    with pytest.raises(ValueError, match="quantiles"):
        IntensityDistributionLoss(quantiles=1)
    with pytest.raises(ValueError, match="batch size"):
        IntensityDistributionLoss()(noise(2, 1, 8, 8), noise(1, 1, 8, 8))


def test_intensity_distribution_depth_bands_see_bone_in_the_wrong_band():
    def ring(outer: float, inner: float) -> torch.Tensor:
        return disc(outer) - disc(inner)

    body = disc(20.0)
    ct = torch.where(ring(17.5, 14.0) > 0, 1.0, torch.where(body > 0, 0.0, -1.0))  # bone a few pixels in
    # the same share of bright pixels, but at the surface (a ring of about the same area, further out)
    outer = ring(20.0, (20.0**2 - (17.5**2 - 14.0**2)) ** 0.5)
    shifted = torch.where(outer > 0, 1.0, torch.where(body > 0, 0.0, -1.0))
    whole = IntensityDistributionLoss(quantiles=32)
    banded = IntensityDistributionLoss(quantiles=32, depth_bands=[2, 6, 12])
    assert float(whole(shifted, ct, body, body)) < 0.05  # one histogram: nearly the same
    assert float(banded(shifted, ct, body, body)) > 0.3  # per depth band: bone where the CT has soft tissue
    assert float(banded(ct, ct, body, body)) < 1e-6
    # a mask that fills the image has no surface inside it: everything is in the deepest band
    full = torch.ones(1, 1, 16, 16)
    assert float(banded(noise(1, 1, 16, 16), noise(1, 1, 16, 16), full, full)) == pytest.approx(
        float(whole(noise(1, 1, 16, 16), noise(1, 1, 16, 16), full, full)), abs=1e-6
    )
    with pytest.raises(ValueError, match="depth_bands"):
        IntensityDistributionLoss(depth_bands=[4, 2])
    with pytest.raises(ValueError, match="needs both masks"):
        banded(ct, ct, body)


def test_a_loss_term_names_its_mask():
    l1 = torch.nn.L1Loss(reduction="none")
    pred, label = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    label[..., :2, :] = 5.0
    top, bottom = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    top[..., :2, :], bottom[..., 2:, :] = 1, 1
    namespace = {"pred": pred, "label": label, "mask": top, "ct_mask": bottom}
    assert float(LossTerm(l1, region="mask")(namespace)) == 5.0
    assert float(LossTerm(l1, region="mask", mask="ct_mask")(namespace)) == 1.0
    assert float(LossTerm(l1, region="outside", mask="other")(namespace)) == 0.0  # no such mask: nothing outside


# ------------------------------------------------------------------------------------------------------ pool
def test_image_pool_fills_then_swaps_with_probability_p():
    images = torch.arange(6.0).reshape(6, 1, 1, 1)
    pool = ImagePool(size=4, p=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(pool.query(images[:4]), images[:4])  # filling: the new images themselves
    assert len(pool) == 4
    out = pool.query(images[4:])  # full, p = 1: stored images come back, the new ones take their places
    assert set(out.flatten().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert {4.0, 5.0} <= {float(t) for t in pool.images} and len(pool) == 4
    never = ImagePool(size=2, p=0.0)
    never.query(images[:2])
    assert torch.equal(never.query(images[2:]), images[2:])
    assert torch.equal(ImagePool(size=0).query(images), images)


def test_image_pool_returns_history_about_half_the_time():
    pool = ImagePool(size=50, p=0.5, generator=torch.Generator().manual_seed(1))
    pool.query(torch.full((50, 1, 2, 2), -1.0))
    new = torch.arange(400.0).reshape(400, 1, 1, 1).expand(400, 1, 2, 2).clone().requires_grad_(True)
    out = pool.query(new)
    assert not out.requires_grad and out.shape == (400, 1, 2, 2)
    from_history = float((out != new).any(dim=(1, 2, 3)).float().mean())
    assert 0.4 < from_history < 0.6
    with pytest.raises(ValueError, match="cannot join"):
        pool.query(torch.ones(1, 1, 3, 3))


# ------------------------------------------------------------------------------------------------ unpaired data
def test_the_sampler_redraws_the_ct_against_the_mr_every_epoch():
    dataset = UnpairedDataset(mr=[{"image": i} for i in range(5)], ct=[{"label": j} for j in range(5)])
    sampler = UnpairedSampler(dataset, seed=0)
    epochs = [list(sampler) for _ in range(4)]
    for pairs in epochs:
        assert sorted(i for i, _ in pairs) == sorted(j for _, j in pairs) == list(range(5))  # each once per epoch
    assert len({tuple(sorted(pairs)) for pairs in epochs}) == 4  # a different MR-CT pairing every epoch
    uneven = UnpairedSampler(UnpairedDataset(mr=[{}] * 2, ct=[{}] * 5), seed=0)
    pairs = list(uneven)
    assert len(pairs) == len(uneven) == 5
    assert sorted(j for _, j in pairs) == list(range(5)) and {i for i, _ in pairs} == {0, 1}


def test_processes_of_a_distributed_run_share_each_epoch():
    dataset = UnpairedDataset(mr=[{}] * 5, ct=[{}] * 3)
    alone = list(UnpairedSampler(dataset, seed=0))
    shares = [list(UnpairedSampler(dataset, seed=0, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 3  # 5 pairs, padded to 6: equal iterations for every process
    assert shares[0] + shares[1] != [] and sorted(shares[0][:3] + shares[1][:2]) == sorted(alone)
    with pytest.raises(ValueError, match="rank"):
        UnpairedSampler(dataset, num_replicas=2, rank=2)


def test_the_dataset_merges_both_sides_slice_by_slice():
    mr = [[{"image": "mr0a", "case": "A"}, {"image": "mr0b", "case": "A"}]]
    ct = [[{"label": "ct0a", "case": "B"}, {"label": "ct0b", "case": "B"}]]
    merged = UnpairedDataset(mr, ct)[(0, 0)]
    assert merged == [
        {"image": "mr0a", "case": "A", "label": "ct0a", "ct_case": "B"},
        {"image": "mr0b", "case": "A", "label": "ct0b", "ct_case": "B"},
    ]
    with pytest.raises(ValueError, match="same number of slices"):
        UnpairedDataset(mr, [[{"label": 0}]])[(0, 0)]
    with pytest.raises(TypeError, match="UnpairedSampler"):
        UnpairedDataset(mr, ct)[0]  # a fixed pairing by index is refused


def test_a_paired_datalist_is_used_as_unpaired(heads_datalist):
    mr, ct = unpaired_items(str(heads_datalist))
    assert mr and all(set(item) == {"image", "mask", "case", "subject"} for item in mr)
    assert ct and all(set(item) == {"label", "case", "subject"} for item in ct)
    assert [item["label"] for item in paired_items(str(heads_datalist))] == [
        item["label"] for item in json.loads(heads_datalist.read_text())["validation"]
    ]


def test_body_mask_fills_enclosed_dark_structures_and_keeps_a_given_mask():
    image = synthetic_ct(disc(16) * (1 - disc(4)))[0]  # a head with dark air inside, and a speck of noise
    image[0, 2, 2] = 1.0
    volume = image[..., None].repeat(1, 1, 1, 3)
    d = BodyMaskd("label", mask_key="ct_mask", threshold=-0.5)({"label": volume})
    assert torch.equal(d["ct_mask"][0, ..., 1], disc(16)[0, 0].to(d["ct_mask"].dtype))
    given = torch.zeros_like(volume)
    assert (
        BodyMaskd("label", mask_key="ct_mask", threshold=-0.5)({"label": volume, "ct_mask": given})["ct_mask"] is given
    )


# ---------------------------------------------------------------------------------------------------- the step
ADV = PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)
L1 = torch.nn.L1Loss(reduction="none")


def cycle_recipe(idt: float = 5.0) -> dict:
    def term(loss, weight, *inputs):
        return {"loss": loss, "weight": weight, "inputs": list(inputs)}

    return {
        "gan_ct": term(GeneratorAdversarialLoss(ADV), 1.0, "d_ct_fake"),
        "gan_mr": term(GeneratorAdversarialLoss(ADV), 1.0, "d_mr_fake"),
        "cyc_mr": term(L1, 10.0, "rec_mr", "real_mr"),
        "cyc_ct": term(L1, 10.0, "rec_ct", "real_ct"),
        "idt_ct": term(L1, idt, "idt_ct", "real_ct"),
        "idt_mr": term(L1, idt, "idt_mr", "real_mr"),
        "cc_ct": term(CorrelationCoefficientLoss(), 2.0, "fake_ct", "real_mr"),
        "cc_mr": term(CorrelationCoefficientLoss(), 2.0, "fake_mr", "real_ct"),
        "shape": term(ShapeConstraintLoss(), 10.0, "fake_ct", "mr_mask"),
        "hist_ct": term(IntensityDistributionLoss(), 3.0, "fake_ct", "real_ct", "mr_mask", "ct_mask"),
    }


def cycle_trainer(recipe: dict, **kwargs) -> CycleGanTrainer:
    torch.manual_seed(0)
    nets = [Generator(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8), strides=(2,)) for _ in "gg"]
    nets += [MultiScaleDiscriminator(spatial_dims=2, in_channels=1, channels=4, num_layers_d=2) for _ in "dd"]
    items = [{"image": torch.rand(1, 48, 48) * 2 - 1, "label": torch.rand(1, 48, 48) * 2 - 1} for _ in range(4)]
    for item in items:
        item["mask"] = (item["image"] > -0.5).float()
    return CycleGanTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=DataLoader(items, batch_size=2),
        generator_ct=nets[0],
        generator_mr=nets[1],
        discriminator_ct=nets[2],
        discriminator_mr=nets[3],
        g_optimizer=torch.optim.Adam([p for n in nets[:2] for p in n.parameters()], 1e-3),
        d_optimizer=torch.optim.Adam([p for n in nets[2:] for p in n.parameters()], 1e-3),
        d_loss=DiscriminatorAdversarialLoss(ADV),
        g_losses=recipe,
        **kwargs,
    )


def test_one_epoch_trains_four_networks_and_logs_every_term():
    trainer = cycle_trainer(cycle_recipe(), pool_size=3)
    nets = (trainer.generator_ct, trainer.generator_mr, trainer.discriminator_ct, trainer.discriminator_mr)
    before = [[p.detach().clone() for p in n.parameters()] for n in nets]
    trainer.run()
    for network, old in zip(nets, before):
        assert any(not torch.equal(a, b) for a, b in zip(old, network.parameters()))
        assert all(p.requires_grad for p in network.parameters())
    metrics = trainer.state.metrics
    terms = ["gan_ct", "gan_mr", "cyc_mr", "cyc_ct", "idt_ct", "idt_mr", "cc_ct", "cc_mr", "shape", "hist_ct"]
    for name in ["loss_g", "loss_d", "loss_d_ct", "loss_d_mr"] + [f"loss_{t}" for t in terms]:
        assert math.isfinite(metrics[name]) and metrics[name] > 0, name
    out = trainer.state.output[0]
    weights = {"gan_ct": 1, "gan_mr": 1, "cyc_mr": 10, "cyc_ct": 10, "idt_ct": 5, "idt_mr": 5, "cc_ct": 2, "cc_mr": 2}
    expected = sum(w * out[f"loss_{t}"] for t, w in weights.items()) + 10 * out["loss_shape"] + 3 * out["loss_hist_ct"]
    assert out["loss_g"] == pytest.approx(expected, rel=1e-5)
    assert out["loss_d"] == pytest.approx(out["loss_d_ct"] + out["loss_d_mr"])
    assert len(trainer.pool_ct) == len(trainer.pool_mr) == 3
    assert {"image", "label", "pred", "fake_mr", "rec_mr", "mask"} <= set(out)


def test_identity_mappings_are_skipped_at_weight_zero():
    trainer = cycle_trainer(cycle_recipe(idt=0.0))
    calls = []
    trainer.generator_ct.register_forward_hook(lambda *args: calls.append("G_ct"))
    trainer.run()
    assert trainer.state.metrics["loss_idt_ct"] == 0.0
    assert len(calls) == 2 * 2  # fake_ct and rec_ct per iteration, no idt_ct


def test_every_image_a_discriminator_sees_goes_through_the_augmentation():
    seen = []

    def augment(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.requires_grad)
        return x.flip(-1)

    trainer = cycle_trainer(cycle_recipe(idt=0.0), pool_size=0, discriminator_augment=augment)
    trainer.run()
    # per iteration: D_ct(fake_ct), D_mr(fake_mr) in the G step, then real and pooled fake for each D in the D step
    assert len(seen) == 2 * 6
    assert seen[:2] == [True, True]  # the generator step's synthetic images carry gradients to the generators
    plain = cycle_trainer(cycle_recipe(idt=0.0), pool_size=0)
    plain.run()
    assert trainer.state.metrics["loss_d"] != plain.state.metrics["loss_d"]


def test_diff_augment_shifts_and_cuts_with_the_background_and_passes_gradients():
    torch.manual_seed(0)
    x = (torch.rand(4, 1, 32, 24) * 0.5 + 0.25).requires_grad_()
    shifted = DiffAugment(["translation"], translation=0.25, fill=-1.0)(x)
    for i in range(4):  # a shifted copy: the kept pixels equal a window of the input, the rest is fill
        kept = shifted[i, 0][shifted[i, 0] != -1]
        assert kept.numel() > 0 and torch.isin(kept.detach(), x[i, 0].detach()).all()
    cut = DiffAugment(["cutout"], cutout=0.5, fill=-1.0)(x)
    assert ((cut == -1).flatten(1).sum(1) == 16 * 12).all()  # one box of half of each side per image
    (shifted.sum() + cut.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    volume = torch.rand(2, 1, 16, 16, 8)
    assert DiffAugment()(volume).shape == volume.shape
    assert torch.equal(DiffAugment().eval()(volume), volume)
    with pytest.raises(ValueError, match="unknown policy"):
        DiffAugment(["colour"])
    with pytest.raises(ValueError, match="must be in"):
        DiffAugment(translation=1.5)


# ------------------------------------------------------------------------------------------------- the bundle
def cyclegan(datalist: Path, work: Path, **overrides):
    return train_workflow("cyclegan_cc", datalist, work, **overrides)


def test_a_paired_datalist_is_loaded_unpaired_and_redrawn_every_epoch(heads_datalist, tmp_path):
    workflow = cyclegan(heads_datalist, tmp_path, batch_size=1)
    assert not workflow.check_properties()
    loader = workflow.parser.get_parsed_content("train#trainer#train_data_loader")  # what the trainer iterates
    epochs = []
    for _ in range(6):
        epochs.append(frozenset((mr, ct) for batch in loader for mr, ct in zip(batch["case"], batch["ct_case"])))
    training = {item["case"] for item in json.loads(heads_datalist.read_text())["training"]}
    for pairs in epochs:  # every epoch sees every MR and every CT
        assert {mr for mr, _ in pairs} == {ct for _, ct in pairs} == training
    assert len(set(epochs)) > 1  # ... in more than one pairing: the CT is re-drawn against the MR


@pytest.fixture(scope="module")
def unpaired_datalist(tmp_path_factory) -> Path:
    """The ``unpaired`` layout: MR of cases 1-3, CT of cases 3-5; case 3 (both scans) is the validation subject."""
    from custom.demo.heads import make_demo_data
    from custom.tools.layouts import make_datalist

    root = tmp_path_factory.mktemp("unpaired")
    make_demo_data(root / "demo", cases=5, seed=4, shape=(48, 48, 10))
    for domain, file, cases in (("MR", "mr", (1, 2, 3)), ("CT", "ct", (3, 4, 5))):
        (root / "data" / domain).mkdir(parents=True)
        for k in cases:
            source = root / "demo" / f"1HD00{k}" / f"{file}.nii.gz"
            (root / "data" / domain / f"1HD00{k}.nii.gz").write_bytes(source.read_bytes())
    make_datalist(root / "data", "unpaired", root / "datalist.json", val_subjects="1HD003")
    return root / "datalist.json"


def test_training_on_an_unpaired_layout_validates_on_the_known_pair(unpaired_datalist, tmp_path):
    data = json.loads(unpaired_datalist.read_text())
    assert [i["case"] for i in data["training_mr"]] == ["1HD001", "1HD002"]
    assert [i["case"] for i in data["training_ct"]] == ["1HD004", "1HD005"]
    workflow = cyclegan(unpaired_datalist, tmp_path, lambda_hist=1.0, hist_depth_bands=[2, 6])
    assert not workflow.check_properties()
    assert [item["case"] for item in workflow.parser.get_parsed_content("validate#items")] == ["1HD003"]
    assert workflow.parser.get_parsed_content("generator_losses#hist_ct#loss").depth_bands == [2, 6]
    workflow.run()
    workflow.finalize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2 and 0 < trainer.state.metrics["loss_shape"] < 2  # outline + hinge, each <= 1
    assert trainer.state.metrics["loss_hist_ct"] > 0  # the optional term and its depth bands reach the step's masks
    record = json.loads((tmp_path / "models" / "model.json").read_text())
    assert record["best"]["metric"] == "val_mae" and np.isfinite(record["best"]["value"])
    checkpoint = torch.load(tmp_path / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert {"generator", "generator_mr", "discriminator_ct", "discriminator_mr", "training_budget"} <= set(checkpoint)

    from custom.inference import run_bundle_inference

    mr = data["training_mr"][0]["image"]  # an MR without a mask: the whole grid is predicted
    written = run_bundle_inference(BUNDLE, ckpt=tmp_path / "models" / "model.pt", dataset_dir=mr, output_dir=tmp_path)
    sct, source = nib.load(written[0]), nib.load(mr)
    assert sct.shape == source.shape and sct.get_data_dtype() == np.int16
    np.testing.assert_allclose(sct.affine, source.affine, atol=1e-4)


def test_validation_and_model_pt_use_the_weight_average_of_the_mr_to_ct_generator(heads_datalist, tmp_path):
    workflow = cyclegan(heads_datalist, tmp_path, epochs=1, val_interval=1, ema_momentum=0.3)
    average = workflow.parser.get_parsed_content("generator_average")
    generator = workflow.parser.get_parsed_content("gan#generator")
    assert average.momentum == 0.3 and average.model is generator  # the MR -> CT generator, not generator_mr
    assert workflow.parser.get_parsed_content("validate#evaluator").network is average.ema_model
    workflow.run()
    saved = torch.load(tmp_path / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in average.ema_model.state_dict().items())
    assert any(not torch.equal(saved[k], v) for k, v in generator.state_dict().items()), "model.pt = last weights"
    resumable = torch.load(tmp_path / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert all(torch.equal(resumable["generator_average"][k], v) for k, v in saved.items())
    assert any(not torch.equal(resumable["generator"][k], v) for k, v in saved.items())  # both are kept


def test_an_unpaired_datalist_without_any_pair_is_one_clear_error(unpaired_datalist, tmp_path):
    data = json.loads(unpaired_datalist.read_text())
    data["validation_ct"] = []
    datalist = tmp_path / "no_pairs.json"
    datalist.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"no validation case with both an MR and its CT.*--val_datalist"):
        paired_items(str(datalist))
    mr, ct = unpaired_items(str(datalist))
    assert {i["case"] for i in mr}.isdisjoint(i["case"] for i in ct)


def test_png2d_variant_trains_and_infers_png(png_datalist, tmp_path):
    from PIL import Image

    from custom.inference import run_bundle_inference

    workflow = cyclegan(png_datalist, tmp_path / "work", variants=("train_png2d.json",), epochs=1)
    workflow.run()
    model = tmp_path / "work" / "models" / "model.pt"
    source = json.loads(png_datalist.read_text())["validation"][0]["image"]
    written = run_bundle_inference(BUNDLE, ckpt=model, dataset_dir=source, output_dir=str(tmp_path / "out"))
    with Image.open(written[0]) as sct, Image.open(source) as mr:
        assert sct.size == mr.size and sct.mode == "L"


def test_quick_recipe_trains_resnet_generators_on_crops_and_infers_whole_slices(png_datalist, tmp_path):
    """``train_quick.json``: ResNet generators (no skip connections), no CC term (precision ``auto``, as in
    ``train.json``); training crops of
    ``train_patch_size`` (whole slices by default, crops here) with validation and inference on whole slices
    (``patch_size``); the model record names the backbone."""
    from PIL import Image

    from custom.inference import run_bundle_inference

    quick = json.loads((BUNDLE / "configs" / "train_quick.json").read_text())
    train = json.loads((BUNDLE / "configs" / "train.json").read_text())
    assert train["precision"] == "auto" and quick["network_def"]["backbone"] == "custom.networks.ResNetGenerator"
    assert quick["lambda_cc"] == 0 and "train_patch_size" not in quick  # whole slices: the instance norms see them
    network_def = {**quick["network_def"], "channels": 4, "num_blocks": 1}
    work = tmp_path / "work"
    workflow = cyclegan(
        png_datalist, work, variants=("train_png2d.json", "train_quick.json"), epochs=1, minutes=None,
        network_def=network_def, train_patch_size=[48, 48],
    )  # fmt: skip
    assert workflow.parser.get_parsed_content("train#trainer").precision in ("fp32", "bf16")
    batch = next(iter(workflow.parser.get_parsed_content("train#trainer#train_data_loader")))
    assert tuple(batch["image"].shape[2:]) == tuple(batch["label"].shape[2:]) == (48, 48)  # crops of the 56 x 48 slices
    workflow.run()
    model = work / "models" / "model.pt"
    record = json.loads(model.with_name("model.json").read_text())
    assert record["config"]["network_def"]["backbone"] == "custom.networks.ResNetGenerator"
    source = json.loads(png_datalist.read_text())["validation"][0]["image"]
    written = run_bundle_inference(BUNDLE, ckpt=model, dataset_dir=source, output_dir=str(tmp_path / "out"))
    with Image.open(written[0]) as sct, Image.open(source) as mr:
        assert sct.size == mr.size and sct.mode == "L"
