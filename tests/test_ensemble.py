"""Ensembles, test-time flips and the uncertainty map (custom.networks.Ensemble and its post-processing)."""

from __future__ import annotations

import copy
import gc

import pytest
import torch

from custom.errors import InputError
from custom.inference import member_paths
from custom.inferers import EnsembleInferer
from custom.networks import Augmentation, Ensemble, tta_variants
from custom.transforms import SplitUncertaintyd


class Constant(torch.nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = torch.nn.Parameter(torch.tensor(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x[:, :1]) + self.value


def lr_symmetric_conv() -> torch.nn.Module:
    """A 3x3 convolution whose kernel is mirror-symmetric along the first spatial axis: flipping the input along that
    axis flips the output (zero padding is symmetric too)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_((conv.weight + conv.weight.flip(2)) / 2)
    return conv


def test_tta_variants():
    assert tta_variants("none") == [Augmentation()]
    assert [a.flips for a in tta_variants("flip")] == [(), (0,)]
    assert [a.flips for a in tta_variants("flip", [1, 0])] == [(), (0,), (1,), (0, 1)]
    assert [a.shifts for a in tta_variants("shift")] == [(), (0,), (1,), (0, 1)]  # every in-plane combination
    assert len(tta_variants("shift", spatial_dims=3)) == 8
    both = tta_variants("flip_shift")
    assert len(both) == 8 and len(set(both)) == 8 and both[0] == Augmentation()
    with pytest.raises(ValueError, match="tta"):
        tta_variants("rotate")
    with pytest.raises(ValueError, match="tta_axes"):
        tta_variants("flip", [0, 0])
    with pytest.raises(ValueError, match="spatial_dims"):
        tta_variants("shift", spatial_dims=4)


def test_tta_flip_of_a_flip_equivariant_network_is_its_plain_prediction():
    conv = lr_symmetric_conv()
    x = torch.randn(2, 1, 16, 12)
    flipped = Ensemble([conv], tta_variants("flip"), uncertainty=True)(x)
    torch.testing.assert_close(flipped[:, :1], conv(x), atol=1e-6, rtol=0)
    assert flipped[:, 1].abs().max() < 1e-5  # the flips agree: no spread
    # a network that is not equivariant does change under the flip (the test above can fail)
    torch.manual_seed(1)
    plain = torch.nn.Conv2d(1, 1, 3, padding=1)
    assert (Ensemble([plain], tta_variants("flip"))(x) - plain(x)).abs().max() > 1e-3


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_tta_shift_of_a_shift_equivariant_network_is_its_plain_prediction(spatial_dims):
    """A stride-1 convolution commutes with shifts, so away from the image border (where the replicated edge meets
    the convolution's zero padding) every shift gives back the plain prediction and the spread is 0, on the input's
    grid."""
    torch.manual_seed(0)
    conv = (torch.nn.Conv2d if spatial_dims == 2 else torch.nn.Conv3d)(1, 1, 3, padding=1)
    x = torch.randn(2, 1, *([12] * spatial_dims))
    variants = tta_variants("shift", spatial_dims=spatial_dims)
    assert len(variants) == 2**spatial_dims
    out = Ensemble([conv], variants, uncertainty=True, shift=3)(x)
    assert out.shape == (2, 2, *([12] * spatial_dims))
    inner = (slice(1, -1),) * spatial_dims
    torch.testing.assert_close(out[(slice(None), slice(0, 1)) + inner], conv(x)[(...,) + inner], atol=1e-5, rtol=0)
    assert out[(slice(None), 1) + inner].abs().max() < 1e-5


def test_tta_shift_moves_the_input_on_the_pooling_grid():
    """A network that pools by 2 and repeats back sees a 2-voxel grid: a 1-voxel shift changes its output (what the
    shifts are for), and the output keeps the input's grid."""

    class Pooled(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(x, 2), scale_factor=2)

    x = torch.randn(1, 1, 12, 12)
    moved = Ensemble([Pooled()], [Augmentation(shifts=(0, 1))], shift=1)(x)
    assert moved.shape == x.shape and (moved - Pooled()(x)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="tta_shift"):
        Ensemble([Pooled()], shift=0)
    with pytest.raises(InputError, match="tta_shift"):
        EnsembleInferer(None, tta="shift", tta_shift=2.5)


def test_an_ensemble_of_one_is_the_single_model():
    torch.manual_seed(0)
    net = torch.nn.Conv3d(1, 1, 3, padding=1)
    x = torch.randn(1, 1, 8, 8, 4)
    assert torch.equal(Ensemble([net])(x), net(x))
    both = Ensemble([net], uncertainty=True)(x)
    assert both.shape == (1, 2, 8, 8, 4)
    assert torch.equal(both[:, :1], net(x)) and torch.count_nonzero(both[:, 1]) == 0
    calls = []
    plain = EnsembleInferer(lambda inputs, network: calls.append(network) or network(inputs))
    assert torch.equal(plain(x, net), net(x)) and calls == [net]  # nothing to combine: the network itself


def test_the_inferer_prepares_the_network_it_is_handed_once_per_weights():
    """Every path (custom infer, monai.bundle run, MONAI Label) hands the inferer the plain network; it runs
    ``prepare(network)``, made once, and made again after weights are loaded into the network in place."""
    prepared: list[torch.nn.Module] = []

    def prepare(network: torch.nn.Module) -> torch.nn.Module:
        prepared.append(Constant(float(network.value) * 10))  # a stand-in whose output shows it ran
        return prepared[-1]

    x = torch.zeros(1, 1, 4, 4)
    network = Constant(1.0)
    for tta in ("none", "flip"):
        inferer = EnsembleInferer(lambda inputs, net: net(inputs), tta=tta, prepare=prepare)
        prepared.clear()
        assert torch.equal(inferer(x, network), torch.full_like(x, 10.0))
        assert torch.equal(inferer(x, network), torch.full_like(x, 10.0)) and len(prepared) == 1
        network.load_state_dict({"value": torch.tensor(2.0)})  # what a checkpoint loader does
        assert torch.equal(inferer(x, network), torch.full_like(x, 20.0)) and len(prepared) == 2
        network.load_state_dict({"value": torch.tensor(3.0)}, assign=True)  # new tensors, their versions 0 again
        assert torch.equal(inferer(x, network), torch.full_like(x, 30.0)) and len(prepared) == 3
        network.load_state_dict({"value": torch.tensor(1.0)})
    assert torch.equal(EnsembleInferer(lambda inputs, net: net(inputs))(x, network), torch.ones_like(x))  # no prepare
    # weights made under inference mode keep no version counters: prepared at every call
    with torch.inference_mode():
        frozen = Constant(4.0)
        assert torch.equal(inferer(x, frozen), torch.full_like(x, 40.0))
    # a TorchScript network (MONAI Label's model.ts) runs as it is; a dropped network is not kept
    scripted = torch.jit.script(Constant(5.0))
    assert torch.equal(inferer(x, scripted), torch.full_like(x, 5.0))
    del network
    gc.collect()
    assert len(inferer._prepared) == 0


def test_identical_members_have_zero_uncertainty():
    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    x = torch.randn(1, 1, 10, 10)
    out = Ensemble([net, copy.deepcopy(net), copy.deepcopy(net)], uncertainty=True)(x)
    assert torch.count_nonzero(out[:, 1]) == 0
    torch.testing.assert_close(out[:, :1], net(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("combine,expected", [("mean", 7 / 3), ("median", 2.0)])
def test_combine_rules_and_the_spread(combine, expected):
    members = [Constant(v) for v in (1.0, 2.0, 4.0)]
    out = Ensemble(members, combine=combine, uncertainty=True)(torch.zeros(1, 1, 3, 3))
    torch.testing.assert_close(out[0, 0], torch.full((3, 3), expected))
    spread = torch.tensor([1.0, 2.0, 4.0]).std(correction=0)  # population standard deviation, 1.247
    torch.testing.assert_close(out[0, 1], torch.full((3, 3), float(spread)))


def test_bone_vote_keeps_majority_bone_and_is_the_mean_elsewhere():
    """Level 0.9: three of four predictions at or above it -> the mean of those three (stays bone, where the plain mean
    0.73 would not); one of four, or a tie of two, -> the plain mean."""
    x = torch.zeros(1, 1, 1, 3)

    class Row(torch.nn.Module):
        def __init__(self, values: list[float]) -> None:
            super().__init__()
            self.values = torch.tensor(values)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.values.view(1, 1, 1, 3).expand_as(x).clone()

    members = [Row([0.92, 0.95, 0.95]), Row([0.96, 0.1, 0.95]), Row([0.99, 0.2, 0.1]), Row([0.05, 0.3, 0.2])]
    out = Ensemble(members, combine="bone_vote", bone_level=0.9)(x)[0, 0, 0]
    torch.testing.assert_close(out, torch.tensor([(0.92 + 0.96 + 0.99) / 3, 1.55 / 4, 2.2 / 4]))
    assert Ensemble(members, combine="mean")(x)[0, 0, 0, 0] < 0.9  # what the rule is for
    # bone_half: the tie (two of four, third voxel) is bone too; a single vote (second voxel) is not
    out = Ensemble(members, combine="bone_half", bone_level=0.9)(x)[0, 0, 0]
    torch.testing.assert_close(out, torch.tensor([(0.92 + 0.96 + 0.99) / 3, 1.55 / 4, (0.95 + 0.95) / 2]))
    for rule in ("bone_vote", "bone_half"):
        with pytest.raises(ValueError, match="bone_level"):
            Ensemble(members, combine=rule)
        with pytest.raises(InputError, match="bone_level"):
            EnsembleInferer(None, combine=rule)


def test_bone_half_with_one_model_and_its_flip_keeps_either_bone():
    """N = 2 (one model, left-right flip): bone_half keeps a voxel that either prediction calls bone (the mean of the
    bone values), bone_vote only where both do; where neither does, both are the plain mean."""

    class LeftBone(torch.nn.Module):  # bone on the left column only, whatever the input: not flip-equivariant
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([0.95, 0.5]).view(1, 1, 1, 2).expand_as(x).clone()

    x = torch.zeros(1, 1, 1, 2)
    flips = tta_variants("flip", [1])
    half = Ensemble([LeftBone()], flips, combine="bone_half", bone_level=0.9)(x)
    torch.testing.assert_close(half, torch.full_like(x, 0.95))
    vote = Ensemble([LeftBone()], flips, combine="bone_vote", bone_level=0.9)(x)
    torch.testing.assert_close(vote, torch.full_like(x, 0.725))
    below = Ensemble([LeftBone()], flips, combine="bone_half", bone_level=0.96)(x)
    torch.testing.assert_close(below, torch.full_like(x, 0.725))


def test_bad_ensemble_arguments():
    net = torch.nn.Conv2d(1, 1, 1)
    with pytest.raises(ValueError, match="no member"):
        Ensemble([])
    with pytest.raises(ValueError, match="combine"):
        Ensemble([net], combine="max")
    with pytest.raises(ValueError, match="augmentation axes"):
        Ensemble([net], [Augmentation(), Augmentation(flips=(2,))])(torch.zeros(1, 1, 4, 4))
    with pytest.raises(InputError, match="tta"):
        EnsembleInferer(None, tta="rot90")
    with pytest.raises(InputError, match="combine"):
        EnsembleInferer(None, combine="max")
    with pytest.raises(InputError, match="uncertainty"):
        EnsembleInferer(None, uncertainty="yes")


def test_split_uncertainty_scales_the_spread_to_ct_units():
    pred = torch.stack([torch.full((4, 4), 0.5), torch.full((4, 4), 0.1)])  # (2, H, W): prediction, spread
    out = SplitUncertaintyd("pred", "pred_std", unit_range=(-1, 1), ct_window=(-1024, 3072))({"pred": pred})
    assert out["pred"].shape == (1, 4, 4) and torch.all(out["pred"] == 0.5)
    torch.testing.assert_close(out["pred_std"], torch.full((1, 4, 4), 0.1 * 4096 / 2))
    one = SplitUncertaintyd("pred", "pred_std", (-1, 1), (0, 255))({"pred": pred[:1]})
    assert "pred_std" not in one  # no uncertainty asked for: nothing added


def test_member_paths(tmp_path):
    for name in ("member_1", "member_0"):
        (tmp_path / "ens" / name / "models").mkdir(parents=True)
        (tmp_path / "ens" / name / "models" / "model.pt").write_bytes(b"")
    found = member_paths(str(tmp_path / "ens"))
    assert [p.split("/")[-3] for p in found] == ["member_0", "member_1"]
    assert member_paths(f"{found[1]},{found[0]}") == [found[1], found[0]]
    with pytest.raises(InputError, match="no trained model"):
        member_paths(str(tmp_path / "missing.pt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="without any model.pt"):
        member_paths(str(tmp_path / "empty"))


def test_train_ensemble_trains_members_with_their_seeds_and_infer_combines_them(heads_datalist, tmp_path, capsys):
    import json

    import nibabel as nib
    import numpy as np
    from conftest import ROOT, tiny_overrides

    from custom.cli import main

    bundle, out = ROOT / "bundles" / "pix2pix_ngf", tmp_path / "ensemble"
    settings = [a for k, v in tiny_overrides("pix2pix_ngf").items() for a in (f"--{k}", json.dumps(v))]
    command = ["train-ensemble", str(bundle), str(out), "--members", "2", "--minutes", "2", *settings]
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--datalist", str(heads_datalist), "--seed", "5"])
    assert exit_.value.code == 0, capsys.readouterr().err
    records = [json.loads((out / f"member_{i}" / "models" / "member.json").read_text()) for i in (0, 1)]
    assert [(r["seed"], r["minutes"]) for r in records] == [(5, 1.0), (6, 1.0)]
    weights = [torch.load(out / f"member_{i}" / "models" / "model.pt", weights_only=True) for i in (0, 1)]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # different seeds, other models
    case = json.loads(heads_datalist.read_text())["test"][0]
    with pytest.raises(SystemExit) as exit_:
        main(["infer", str(bundle), case["image"], str(tmp_path / "sct"), "--ckpt", str(out), "--uncertainty"])
    assert exit_.value.code == 0, capsys.readouterr().err
    assert len(list((tmp_path / "sct").glob("*_sct_std.nii.gz"))) == 1
    assert np.asarray(nib.load(next((tmp_path / "sct").glob("*_sct_std.nii.gz"))).dataobj).max() > 0
    # a finished member is kept when the command runs again
    before = (out / "member_0" / "models" / "model.pt").stat().st_mtime_ns
    with pytest.raises(SystemExit):
        main([*command, "--datalist", str(heads_datalist), "--seed", "5"])
    assert (out / "member_0" / "models" / "model.pt").stat().st_mtime_ns == before
    assert "trained already" in capsys.readouterr().out


def test_train_ensemble_bad_arguments(tmp_path, capsys):
    from conftest import ROOT

    from custom.cli import main

    bundle = str(ROOT / "bundles" / "pix2pix_ngf")
    for args, fragment in (
        (["--members", "1"], "--members 1"),
        (["--minutes", "0"], "--minutes 0"),
        (["--config", "nope.json"], "nope.json: config file not found"),
        (["--seed", "3", "--ckpt_dir", "x"], "--ckpt_dir: set by train-ensemble"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["train-ensemble", bundle, str(tmp_path / "e"), *args])
        assert exit_.value.code == 2 and fragment in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
