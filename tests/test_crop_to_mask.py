"""CropToMaskInferer runs its inferer on the body mask's bounding box only, and PrepareBatchWithMask hands it the mask;
swin_pix2pix_3d's inference runs through both when the case has a mask."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from monai.data import MetaTensor
from monai.data.utils import dense_patch_slices
from monai.inferers import SlidingWindowInferer

from custom.inferers import CropToMaskInferer, PrepareBatchWithMask, mask_bounding_box
from custom.inferers.crop_to_mask import window_aligned_box


def _mask(shape=(40, 36, 30), box=(slice(5, 21), slice(8, 30), slice(10, 19))) -> torch.Tensor:
    mask = torch.zeros(1, 1, *shape)
    mask[(0, 0, *box)] = 1
    return mask


def test_bounding_box_margin_and_clipping():
    mask = _mask()
    assert mask_bounding_box(mask) == (slice(5, 21), slice(8, 30), slice(10, 19))
    assert mask_bounding_box(mask, 6) == (slice(0, 27), slice(2, 36), slice(4, 25))  # clipped at 0 and 36
    assert mask_bounding_box(mask, (0, 1, 2)) == (slice(5, 21), slice(7, 31), slice(8, 21))
    with pytest.raises(ValueError, match="empty"):
        mask_bounding_box(torch.zeros(1, 1, 4, 4, 4))
    with pytest.raises(ValueError, match="margin"):
        mask_bounding_box(mask, -1)


def test_crop_runs_fewer_windows_and_fills_the_rest():
    windows = []

    def network(x: torch.Tensor) -> torch.Tensor:  # voxel-wise: any tiling gives the same value inside the box
        windows.append(x.shape[0])
        return torch.tanh(x)

    sliding = SlidingWindowInferer(roi_size=(16, 16, 16), sw_batch_size=2, overlap=0.5, mode="gaussian")
    inferer = CropToMaskInferer(sliding, background=-1.0)
    image = torch.rand(1, 1, 40, 36, 30)
    mask = _mask()
    whole = inferer(image, network)  # no mask: the wrapped inferer on the whole image
    whole_windows = sum(windows)
    torch.testing.assert_close(whole, sliding(image, network))
    windows.clear()
    cropped = inferer(image, network, mask=mask)
    touching = [w for w in dense_patch_slices(image.shape[2:], (16, 16, 16), (8, 8, 8))
                if all(p.start < b.stop and p.stop > b.start for p, b in zip(w, mask_bounding_box(mask)))]  # fmt: skip
    assert sum(windows) == len(touching) < whole_windows  # the windows that touch the mask's box, no others
    box = (slice(None), slice(None), *mask_bounding_box(mask))
    torch.testing.assert_close(cropped[box], whole[box])
    outside = torch.ones_like(mask, dtype=torch.bool)
    outside[(slice(None), slice(None), *window_aligned_box(box[2:], image.shape[2:], 16, 0.5))] = False
    assert outside.any() and bool((cropped[outside] == -1.0).all())
    with pytest.raises(ValueError, match="does not match"):
        inferer(image, network, mask=mask[..., :-1])


def test_the_box_grows_to_whole_windows_of_the_volume():
    # axis of 40, ROI 16, overlap 0.5: interval 8, windows start at 0, 8, 16, 24 (the last one ends at 40)
    assert window_aligned_box((slice(5, 21),), (40,), 16, 0.5) == (slice(0, 32),)
    assert window_aligned_box((slice(30, 31),), (40,), 16, 0.5) == (slice(16, 40),)
    assert window_aligned_box((slice(3, 5),), (12,), 16, 0.5) == (slice(0, 12),)  # shorter than the ROI: whole axis
    assert window_aligned_box((slice(3, 5),), (12,), -1, 0.5) == (slice(0, 12),)  # ROI -1: the image size


def _naive_crop(sliding, image, network, mask):
    box = (slice(None), slice(None), *mask_bounding_box(mask))
    out = torch.full_like(image, float("nan"))
    out[box] = sliding(image[box], network)
    return out


@pytest.mark.parametrize("kind", ["voxel-wise", "SwinUNETR"])
def test_cropped_and_whole_volume_runs_agree_inside_the_mask(kind):
    """The defect this fixes: tiled from the mask's corner, the windows differ from the whole volume's, and so does a
    real network's output (checked below on the naive crop); grown to whole windows, they agree to float rounding."""
    from monai.networks.nets import SwinUNETR

    torch.manual_seed(0)
    if kind == "SwinUNETR":
        net = SwinUNETR(in_channels=1, out_channels=1, feature_size=12, spatial_dims=3).eval()
        roi = (64, 64, 32)
    else:
        net, roi = torch.tanh, (16, 16, 16)
    sliding = SlidingWindowInferer(roi_size=roi, sw_batch_size=2, overlap=0.25, mode="gaussian")
    image = torch.rand(1, 1, 112, 96, 56)
    mask = _mask(image.shape[2:], (slice(30, 70), slice(20, 60), slice(12, 30)))
    inside = mask.bool()
    with torch.inference_mode():
        whole = sliding(image, net)
        cropped = CropToMaskInferer(sliding, background=-1.0)(image, net, mask=mask)
        naive = _naive_crop(sliding, image, net, mask)
    tolerance = 1e-4 * float(whole.max() - whole.min())
    assert float((cropped - whole)[inside].abs().max()) <= tolerance
    if kind == "SwinUNETR":  # the test can see the defect
        assert float((naive - whole)[inside].abs().max()) > 100 * tolerance


def test_crop_keeps_the_image_metadata():
    affine = torch.diag(torch.tensor([2.0, 2.0, 3.5, 1.0]))
    image = MetaTensor(torch.rand(1, 1, 40, 36, 30), affine=affine)
    inferer = CropToMaskInferer(SlidingWindowInferer(roi_size=(16, 16, 16)), background=-1.0)
    out = inferer(image, lambda x: x, mask=_mask())
    assert isinstance(out, MetaTensor) and out.shape == image.shape
    torch.testing.assert_close(out.affine, image.affine)


def test_prepare_batch_passes_the_mask_only_when_there_is_one():
    image, mask = torch.rand(1, 1, 4, 4, 4), torch.ones(1, 1, 4, 4, 4)
    got_image, label, args, kwargs = PrepareBatchWithMask()({"image": image, "mask": mask})
    assert got_image is image or torch.equal(got_image, image)
    assert label is None and args == () and torch.equal(kwargs["mask"], mask)
    assert PrepareBatchWithMask()({"image": image})[3] == {}
    assert PrepareBatchWithMask(mask_key=None)({"image": image, "mask": mask})[3] == {}


@pytest.mark.parametrize("tta", ["none", "flip"])
def test_swin_inference_crops_to_the_case_mask(tta):
    """The bundle's inference config: with a case mask the network runs on the mask's box only (fewer windows), with
    ``crop_to_mask false`` on the whole volume; the rest of the sCT is air (``FillOutsideMaskd`` afterwards). The same
    with test-time flips (one more pass per window)."""
    from monai.bundle import ConfigParser

    windows = {}
    for crop in (True, False):
        parser = ConfigParser()
        parser.read_config(str(ROOT / "bundles" / "swin_pix2pix_3d" / "configs" / "inference.json"))
        parser.update({"crop_to_mask": crop, "patch_size": [16, 16, 16], "device": "$torch.device('cpu')", "tta": tta})
        inferer, prepare = parser.get_parsed_content("inferer"), parser.get_parsed_content("evaluator#prepare_batch")
        assert parser.get_parsed_content("model_inferer#background") == -1.0  # air in the network's output units
        counted = []

        class Network(torch.nn.Module):  # a module: test-time flips wrap it in an ensemble
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                counted.append(x.shape[0])
                return torch.tanh(x)

        network = Network()
        image, _, args, kwargs = prepare({"image": torch.rand(1, 1, 40, 36, 30), "mask": _mask()})
        out = inferer(image, network, *args, **kwargs)
        assert out.shape == image.shape
        windows[crop] = sum(counted)
    assert windows[True] < windows[False]
