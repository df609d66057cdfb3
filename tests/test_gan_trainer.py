"""The GAN engine (Pix2PixTrainer on GanTrainer), its loss recipe, checkpoint handlers and sample grids on tiny
synthetic batches."""

from __future__ import annotations

import json
import math

import pytest
import torch
from ignite.engine import Engine, Events
from monai.losses import PatchAdversarialLoss, SSIMLoss
from torch.utils.data import DataLoader

from custom.engines import Pix2PixTrainer
from custom.handlers import BestModelSaver, ResumableCheckpoint, SampleGridSaver
from custom.losses import (
    DiscriminatorAdversarialLoss,
    GeneratorAdversarialLoss,
    NGFLoss,
    discriminator_logits,
    feature_matching_loss,
)
from custom.model_record import model_config_path
from custom.networks import Generator, MultiScaleDiscriminator

ADV = PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)


def batches(n: int = 4, size: int = 48, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        mr = torch.rand(1, size, size, generator=g) * 2 - 1
        mask = torch.zeros(1, size, size)
        mask[:, 8:-8, 8:-8] = 1
        items.append({"image": mr, "label": -mr * mask - (1 - mask), "mask": mask})
    return items


def recipe(l1: float = 100.0, ngf: float = 0.0, fm: float = 0.0, bg: float = 0.0, region: str = "all") -> dict:
    """The pix2pix_ngf recipe of train.json, as data."""
    return {
        "adv": {"loss": GeneratorAdversarialLoss(ADV), "weight": 1.0, "inputs": ["d_fake"]},
        "l1": {"loss": torch.nn.L1Loss(reduction="none"), "weight": l1, "region": region},
        "ngf": {"loss": NGFLoss(), "weight": ngf, "region": region},
        "fm": {"loss": feature_matching_loss, "weight": fm, "inputs": ["d_real", "d_fake"]},
        "bg": {"loss": torch.nn.L1Loss(reduction="none"), "weight": bg, "inputs": ["pred", -1.0], "region": "outside"},
    }


def make_trainer(g_losses: dict | None = None, **kwargs) -> Pix2PixTrainer:
    torch.manual_seed(0)
    generator = Generator(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8), strides=(2,), num_res_units=0)
    discriminator = MultiScaleDiscriminator(spatial_dims=2, in_channels=2, channels=4, num_layers_d=2, num_d=2)
    settings = dict(
        device="cpu",
        max_epochs=1,
        train_data_loader=DataLoader(batches(), batch_size=2),
        g_network=generator,
        g_optimizer=torch.optim.Adam(generator.parameters(), 1e-3),
        d_network=discriminator,
        d_optimizer=torch.optim.Adam(discriminator.parameters(), 1e-3),
        d_loss=DiscriminatorAdversarialLoss(ADV),
        g_losses=g_losses if g_losses is not None else recipe(),
    )
    settings.update(kwargs)
    return Pix2PixTrainer(**settings)


def test_one_epoch_updates_both_networks_and_logs_every_term():
    trainer = make_trainer(recipe(ngf=10.0, fm=1.0, bg=5.0))
    g_before = [p.detach().clone() for p in trainer.g_network.parameters()]
    d_before = [p.detach().clone() for p in trainer.d_network.parameters()]
    trainer.run()
    assert any(not torch.equal(a, b) for a, b in zip(g_before, trainer.g_network.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, trainer.d_network.parameters()))
    metrics = trainer.state.metrics
    for name in ("loss_g", "loss_d", "loss_adv", "loss_l1", "loss_ngf", "loss_fm", "loss_bg"):
        assert math.isfinite(metrics[name]) and metrics[name] > 0, name
    out = trainer.state.output[0]
    expected = out["loss_adv"] + 100 * out["loss_l1"] + 10 * out["loss_ngf"] + out["loss_fm"] + 5 * out["loss_bg"]
    assert out["loss_g"] == pytest.approx(expected, rel=1e-5)
    assert all(p.requires_grad for p in trainer.d_network.parameters())  # restored after the G step


def test_logged_names_follow_the_recipe_and_an_ssim_term_needs_no_code():
    terms = recipe()
    del terms["ngf"], terms["fm"], terms["bg"]
    terms["ssim"] = {"loss": SSIMLoss(spatial_dims=2, data_range=2.0), "weight": 5.0}  # a scalar-valued MONAI loss
    trainer = make_trainer(terms)
    trainer.run()
    assert set(trainer.state.metrics) == {"loss_g", "loss_d", "loss_adv", "loss_l1", "loss_ssim"}
    out = trainer.state.output[0]
    assert 0 < out["loss_ssim"] < 2
    assert out["loss_g"] == pytest.approx(out["loss_adv"] + 100 * out["loss_l1"] + 5 * out["loss_ssim"], rel=1e-5)


def test_unused_terms_are_zero():
    trainer = make_trainer(recipe(ngf=0.0))
    trainer.run()
    assert trainer.state.metrics["loss_ngf"] == 0.0
    assert trainer.state.metrics["loss_fm"] == 0.0
    assert trainer.state.metrics["loss_bg"] == 0.0


def test_masked_l1_ignores_the_background():
    def l1_with_background(value: float) -> float:
        items = batches()
        for item in items:
            item["label"] = torch.where(item["mask"] > 0, item["label"], torch.full_like(item["label"], value))
        trainer = make_trainer(recipe(region="mask"), train_data_loader=DataLoader(items, batch_size=4))  # one step
        trainer.run()
        return trainer.state.output[0]["loss_l1"]

    assert l1_with_background(-1.0) == pytest.approx(l1_with_background(0.7), rel=1e-6)


def test_recipe_checks():
    with pytest.raises(ValueError, match=">= 0"):
        make_trainer({"l1": {"loss": torch.nn.L1Loss(reduction="none"), "weight": -1}})
    with pytest.raises(ValueError, match="region"):
        make_trainer({"l1": {"loss": torch.nn.L1Loss(reduction="none"), "region": "inside"}})
    with pytest.raises(ValueError, match="identifier"):
        make_trainer({"l 1": {"loss": torch.nn.L1Loss(reduction="none")}})
    with pytest.raises(TypeError, match="'l1'.*unexpected keyword"):
        make_trainer({"l1": {"loss": torch.nn.L1Loss(reduction="none"), "wieght": 1}})
    # a scalar loss cannot be restricted to the mask: said when it is first computed
    trainer = make_trainer({"ssim": {"loss": SSIMLoss(spatial_dims=2, data_range=2.0), "region": "mask"}})
    with pytest.raises(ValueError, match="SSIMLoss returns a scalar.*region 'mask'"):
        trainer.run()


def test_discriminator_logits_accepts_every_output_format():
    x = torch.rand(1, 2, 48, 48)
    multi = MultiScaleDiscriminator(spatial_dims=2, in_channels=2, channels=4, num_layers_d=2, num_d=2)(x)
    assert [t.shape for t in discriminator_logits(multi)] == [scale[-1].shape for scale in multi]
    assert discriminator_logits(multi[0])[0] is multi[0][-1]
    logits = [torch.zeros(1, 1, 4, 4)]
    assert discriminator_logits((logits, [[torch.zeros(1)]])) == logits


def test_best_model_saver_keeps_the_lowest(tmp_path):
    network = torch.nn.Linear(2, 1)
    saver = BestModelSaver(str(tmp_path / "model.pt"), network, metric_name="val_mae")
    engine = Engine(lambda e, b: None)
    for epoch, value in [(1, 10.0), (2, 12.0), (3, 8.0), (4, 9.0)]:
        engine.state.epoch, engine.state.metrics = epoch, {"val_mae": value}
        with torch.no_grad():
            network.bias.fill_(value)
        saver(engine)
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["bias"].item() == 8.0  # the network's plain state dict: loads strictly into it
    network.load_state_dict(saved, strict=True)
    assert saver.state_dict() == {"best_value": 8.0, "best_epoch": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.pt"]  # no temporary file left


def test_best_model_saver_records_the_config_beside_the_weights(tmp_path):
    network = Generator(spatial_dims=2, in_channels=1, out_channels=1, channels=[4, 8], strides=[2])
    config = {"network_def": network.definition(), "ct_window": [-1024, 3071]}
    saver = BestModelSaver(str(tmp_path / "model.pt"), network, metric_name="val_mae", config=config)
    engine = Engine(lambda e, b: None)
    engine.state.epoch, engine.state.metrics = 2, {"val_mae": 12.5}
    saver(engine)
    record = json.loads(model_config_path(tmp_path / "model.pt").read_text())
    assert record["config"] == config
    assert record["best"] == {"metric": "val_mae", "value": 12.5, "epoch": 2}
    from monai.bundle import ConfigParser

    rebuilt = ConfigParser({"net": record["config"]["network_def"]}).get_parsed_content("net")
    rebuilt.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True), strict=True)


def test_resumable_checkpoint_round_trip(tmp_path):
    trainer = make_trainer(max_epochs=2)
    path = tmp_path / "checkpoint_last.pt"
    ResumableCheckpoint(str(path), {"generator": trainer.g_network, "g_optimizer": trainer.g_optimizer}).attach(trainer)
    trainer.run()
    fresh = make_trainer(max_epochs=3)
    ResumableCheckpoint(str(path), {"generator": fresh.g_network, "g_optimizer": fresh.g_optimizer}).attach(fresh)
    epochs = []
    fresh.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs.append(e.state.epoch))
    fresh.run()
    assert epochs == [3]
    assert fresh.state.iteration == 3 * len(fresh.data_loader)


def test_sample_grid_saver_writes_a_png(tmp_path):
    trainer = make_trainer()
    SampleGridSaver(str(tmp_path), max_samples=2).attach(trainer)
    trainer.run()
    from PIL import Image

    with Image.open(tmp_path / "train_epoch0001.png") as grid:
        width, height = grid.size
    assert width > 4 * 160 and 2 * 160 < height < width  # 4 columns, 2 rows of 48-px samples enlarged to 160 px


def test_epoch_handlers_see_this_epochs_loss_averages():
    seen = []

    class Recorder:
        def attach(self, engine):
            engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append(dict(e.state.metrics)))

    trainer = make_trainer(max_epochs=2, train_handlers=[Recorder()])
    trainer.run()
    assert len(seen) == 2 and all("loss_g" in metrics for metrics in seen)
    assert seen[1] == trainer.state.metrics


def test_bf16_precision_trains_on_cpu_and_fp16_needs_cuda():
    trainer = make_trainer(recipe(ngf=10.0), precision="bf16")
    trainer.run()
    assert math.isfinite(trainer.state.metrics["loss_g"])
    assert trainer.state.output[0]["pred"].dtype == torch.bfloat16  # the forward ran under bf16 autocast
    assert all(p.dtype == torch.float32 for p in trainer.g_network.parameters())  # weights stay fp32
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        make_trainer(precision="fp16")
    with pytest.raises(ValueError, match="precision"):
        make_trainer(precision="int8")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch, native):
    import custom.networks.precision as precision

    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    trainer = make_trainer(recipe(ngf=10.0), precision="auto")
    assert trainer.precision == ("bf16" if native else "fp32")
    trainer.run()
    assert trainer.state.output[0]["pred"].dtype == (torch.bfloat16 if native else torch.float32)


def test_native_bf16_follows_onednn():
    from custom.networks import native_bf16

    assert native_bf16("cpu") == torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert native_bf16("meta") is False
