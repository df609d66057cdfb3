"""The pieces of the fast inference path: the network prepared for inference (exact group norm, channels-last,
precision), loading ahead in a thread (errors kept), and writing in the background (errors raised, files complete)."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT
from monai.networks.nets import BasicUNet, SwinUNETR

from custom.data.prefetch import Prefetch
from custom.errors import InputError
from custom.handlers import background_writes
from custom.handlers.background_writes import BackgroundNibabelWriter, wait_for_background_writes
from custom.networks import Generator, prepare_for_inference


def _unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return Generator("BasicUNet", spatial_dims=2, in_channels=1, out_channels=1, features=[8, 8, 16, 16, 32, 8])


def _with_affine_norms() -> torch.nn.Module:
    torch.manual_seed(0)
    net = BasicUNet(
        spatial_dims=2, in_channels=1, out_channels=1, features=[4, 4, 8, 8, 8, 4], norm=("instance", {"affine": True})
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net


@pytest.mark.parametrize("size", [(64, 48), (37, 50)])  # even: the decoder's zero-width pads skipped; odd: padded
@pytest.mark.parametrize("make", [_unet, _with_affine_norms])
def test_prepared_network_is_the_same_function_with_the_same_weights(make, size):
    reference = make().eval()
    state = reference.state_dict()
    prepared = prepare_for_inference(make(), "fp32")
    prepared.load_state_dict(state, strict=True)  # the checkpoint loads as before: same names and shapes
    assert not any(isinstance(m, torch.nn.modules.instancenorm._InstanceNorm) for m in prepared.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in prepared.modules())
    x = torch.rand(3, 1, *size) * 2 - 1
    with torch.inference_mode():
        expected, got = reference(x), prepared(x)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_prepared_network_takes_a_one_channel_input_in_channels_last_strides():
    """A one-channel image counts as channels-last-contiguous in NCHW strides, and PyTorch then runs the first
    convolution (and the skip connection taken from it) in NCHW; the prepared network gives it explicit strides."""
    prepared = prepare_for_inference(_unet(), "bf16")
    first_conv = next(m for m in prepared.modules() if isinstance(m, torch.nn.Conv2d))
    seen = []
    first_conv.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    with torch.inference_mode():
        prepared(torch.rand(2, 1, 32, 32))
    assert seen[0].dtype == torch.bfloat16 and seen[0].stride(1) == 1
    assert prepare_for_inference(_unet(), "fp32", channels_last=False)(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_prepared_3d_swin_network_matches():
    torch.manual_seed(0)

    def make() -> torch.nn.Module:
        return SwinUNETR(in_channels=1, out_channels=1, feature_size=12, window_size=4, norm_name="instance")

    reference = make().eval()
    prepared = prepare_for_inference(make(), "fp32")
    prepared.load_state_dict(reference.state_dict(), strict=True)
    x = torch.rand(1, 1, 64, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(prepared(x), reference(x), atol=5e-4, rtol=1e-3)


def test_bf16_runs_in_bfloat16_and_returns_float32():
    reference = _unet().eval()
    prepared = prepare_for_inference(_unet(), "bf16")
    assert {p.dtype for p in prepared.parameters()} == {torch.bfloat16}
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.inference_mode():
        out = prepared(x)
        assert out.dtype == torch.float32
        assert 0 < (out - reference(x)).abs().mean() < 0.05  # rounded, not another function


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_at_inference(monkeypatch, native):
    import custom.networks.precision as precision

    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    prepared = prepare_for_inference(_unet(), "auto")
    assert {p.dtype for p in prepared.parameters()} == {torch.bfloat16 if native else torch.float32}


def test_precision_errors_are_clear():
    with pytest.raises(ValueError, match="precision 'fp8': expected one of auto, fp32, bf16, fp16"):
        prepare_for_inference(_unet(), "fp8")
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        prepare_for_inference(_unet(), "fp16", device="cpu")


def test_prefetch_keeps_order_and_length():
    items = list(range(7))
    ahead = Prefetch(items, depth=2)
    assert len(ahead) == 7
    assert list(ahead) == items
    assert list(ahead) == items  # re-iterable, like a DataLoader across runs


def test_prefetch_raises_the_loading_error_in_the_caller():
    def source():
        yield 1
        raise InputError("case2/mr.nii.gz: not a readable image")

    class Items:
        def __iter__(self):
            return source()

    seen = []
    with pytest.raises(InputError, match="case2/mr.nii.gz: not a readable image"):
        for item in Prefetch(Items()):
            seen.append(item)
    assert seen == [1]  # nothing skipped silently, nothing after the error


def test_prefetch_stops_its_thread_when_the_caller_stops():
    before = threading.active_count()
    for item in Prefetch(range(1000)):
        if item == 3:
            break
    assert threading.active_count() == before


def _write(path, value: int) -> None:
    writer = BackgroundNibabelWriter(output_dtype=np.int16)
    writer.set_data_array(torch.full((1, 8, 8, 4), float(value)), channel_dim=0)
    writer.set_metadata({"affine": np.eye(4), "original_affine": np.eye(4), "spatial_shape": (8, 8, 4)})
    writer.write(str(path))


def test_background_writes_are_complete_after_the_wait(tmp_path):
    import nibabel as nib

    for i in range(5):
        _write(tmp_path / f"case{i}_sct.nii.gz", i)
    wait_for_background_writes()
    for i in range(5):
        assert np.all(np.asarray(nib.load(tmp_path / f"case{i}_sct.nii.gz").dataobj) == i)
    assert not list(tmp_path.glob(".*"))  # no temporary left


def test_a_failed_background_write_is_raised(tmp_path, monkeypatch):
    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(background_writes.AtomicNibabelWriter, "write", full_disk)
    _write(tmp_path / "case_sct.nii.gz", 1)
    with pytest.raises(OSError, match="No space left on device"):
        wait_for_background_writes()
    wait_for_background_writes()  # the error is reported once; nothing is pending
    assert not (tmp_path / "case_sct.nii.gz").exists()


@pytest.mark.parametrize("overlap_network", [False, True])
def test_background_writes_wait_for_the_network_unless_asked(overlap_network):
    """By default a write overlaps the next item's reading, never the network: none is running when an iteration's
    network pass starts. With ``overlap_network`` the pass may start beside one."""
    from ignite.engine import Engine, Events

    from custom.handlers import BackgroundWrites

    running = threading.Event()
    seen = []

    def slow_write():
        running.set()
        time.sleep(0.3)
        running.clear()

    def network_pass(engine, _batch):  # beside a write? (with the overlap, the one submitted just before will start)
        waits = overlap_network and engine.state.iteration > 1
        seen.append(running.wait(5.0) if waits else running.is_set())

    engine = Engine(network_pass)
    BackgroundWrites(overlap_network=overlap_network).attach(engine)
    engine.add_event_handler(Events.ITERATION_COMPLETED, lambda _e: background_writes._submit(slow_write))
    engine.run(range(4), max_epochs=1)
    assert not running.is_set()  # waited for at the end either way
    assert any(seen) if overlap_network else not any(seen), seen


def test_switches_read_command_line_words():
    """``--background_io false`` arrives as the string "false" (fire keeps lowercase words): it must mean off."""
    from monai.bundle import ConfigParser

    from custom.bundles import flat_config
    from custom.config_keys import flag

    assert flag("false", "x") is False and flag("True", "x") is True and flag(False, "x") is False
    with pytest.raises(InputError, match="background_io='yes': expected true or false"):
        flag("yes", "background_io")
    parser = ConfigParser(flat_config(ROOT / "bundles" / "pix2pix_ngf" / "configs" / "inference.json"))
    for word, overlap in (("false", False), ("true", True)):
        parser["background_io"] = word
        assert parser.get_parsed_content("handlers#0", lazy=False).overlap_network is overlap


@pytest.mark.parametrize("bundle", ["pix2pix_ngf", "cyclegan_cc", "mask2ct_lung", "swin_pix2pix_3d"])
def test_inference_config_takes_the_device_as_text(bundle):
    """MONAI Label sets ``device`` to a string ("cpu", "cuda"): the inferer and the prepared network still build."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(Path(__file__).resolve().parents[1] / "bundles" / bundle / "configs" / "inference.json"))
    parser["device"] = "cpu"
    assert parser.get_parsed_content("inferer") is not None
    assert parser.get_parsed_content("network") is not None


@pytest.mark.parametrize("bundle", ["pix2pix_ngf", "cyclegan_cc", "mask2ct_lung", "swin_pix2pix_3d"])
def test_each_bundles_tta_shift_fits_its_network(bundle):
    """``--tta shift`` pads the network's input by the bundle's ``tta_shift`` on both sides of each axis it moves: the
    padded size must suit the network (8 for BasicUNet, 32 for mask2ct_lung's 6-level Pix2PixUNet, which needs
    multiples of 64, 16 for SwinUNETR's windows, multiples of 32), and the sCT keeps the input's grid. A shift the
    network cannot take is one error that names tta_shift."""
    from monai.bundle import ConfigParser

    from custom.bundles import flat_config

    parser = ConfigParser(flat_config(ROOT / "bundles" / bundle / "configs" / "inference.json"))
    parser["device"], parser["tta"] = "cpu", "shift"
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def").eval()
    shape = {"swin_pix2pix_3d": (64, 64, 32), "mask2ct_lung": (128, 128)}.get(bundle, (64, 64, 2))  # 2D PNG
    x = torch.rand(1, 1, *shape) * 2 - 1
    with torch.no_grad():
        out = parser.get_parsed_content("inferer")(x, network)
        assert out.shape == x.shape and torch.isfinite(out).all()
        if bundle in ("mask2ct_lung", "swin_pix2pix_3d"):
            parser["tta_shift"] = 3
            with pytest.raises(InputError, match="tta_shift=3"):
                parser.get_parsed_content("inferer", lazy=False)(x, network)


@pytest.mark.parametrize(
    "bundle,tta,combine",
    [
        ("pix2pix_ngf", "none", "bone_half"),
        ("cyclegan_cc", "none", "bone_vote"),
        ("swin_pix2pix_3d", "flip", "bone_half"),
    ],
)
def test_the_config_inferer_runs_the_prepared_network_in_every_path(bundle, tta, combine):
    """MONAI Label hands the config's ``inferer`` the plain ``network_def`` with the weights, as ``custom infer`` and
    ``monai.bundle run`` hand it ``network``: in each the inferer runs ``prepare_network(network)`` (never the plain
    network), so the output is bit for bit a prepared network's. (The plain network differs by float rounding, and a
    bone rule can turn that into a jump of hundreds of HU.) Also the bundle's default test-time flips and rule."""
    from monai.bundle import ConfigParser

    from custom.bundles import flat_config
    from custom.networks import Ensemble, tta_variants

    config = flat_config(ROOT / "bundles" / bundle / "configs" / "inference.json")
    assert (config["tta"], config["combine"]) == (tta, combine)
    parser = ConfigParser(config)
    parser["device"] = "cpu"
    torch.manual_seed(0)
    plain = parser.get_parsed_content("network_def").eval()  # as MONAI Label builds it (the weights loaded)
    inferer = parser.get_parsed_content("inferer")
    model_inferer = parser.get_parsed_content("model_inferer")
    x = torch.rand(1, 1, 64, 64, 32 if bundle == "swin_pix2pix_3d" else 2) * 2 - 1
    with torch.no_grad():
        out = inferer(x, plain)  # prepares a copy at the first call
        prepared = parser.get_parsed_content("prepare_network")(plain)  # a separate preparation of its own
        augmentations = tta_variants(tta)
        one = prepared if tta == "none" else Ensemble([prepared], augmentations, combine, False, inferer.bone_level)
        assert torch.equal(out, model_inferer(x, one))
        plain_calls = []
        plain.register_forward_hook(lambda *_: plain_calls.append(1))  # after the copies: on the plain network only
        assert torch.equal(inferer(x, plain), out)
    assert plain_calls == []  # the plain network never ran
