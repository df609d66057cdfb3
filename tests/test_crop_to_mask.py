"""CropToMaskInferer runs its inferer on the body mask's bounding box only, and PrepareBatchWithMask hands it the mask;
swin_pix2pix_3d's inference runs through both when the case has a mask."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from monai.data import MetaTensor
from monai.inferers import SlidingWindowInferer

from custom.inferers import CropToMaskInferer, PrepareBatchWithMask, mask_bounding_box


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
    assert sum(windows) < whole_windows / 3
    box = (slice(None), slice(None), *mask_bounding_box(mask))
    torch.testing.assert_close(cropped[box], whole[box])
    outside = torch.ones_like(mask, dtype=torch.bool)
    outside[box] = False
    assert outside.any() and bool((cropped[outside] == -1.0).all())
    with pytest.raises(ValueError, match="does not match"):
        inferer(image, network, mask=mask[..., :-1])


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


def test_swin_inference_crops_to_the_case_mask():
    """The bundle's inference config: with a case mask the network runs on the mask's box only (fewer windows), with
    ``crop_to_mask false`` on the whole volume; the rest of the sCT is air (``FillOutsideMaskd`` afterwards)."""
    from monai.bundle import ConfigParser

    windows = {}
    for crop in (True, False):
        parser = ConfigParser()
        parser.read_config(str(ROOT / "bundles" / "swin_pix2pix_3d" / "configs" / "inference.json"))
        parser.update({"crop_to_mask": crop, "patch_size": [16, 16, 16], "device": "$torch.device('cpu')"})
        inferer, prepare = parser.get_parsed_content("inferer"), parser.get_parsed_content("evaluator#prepare_batch")
        assert parser.get_parsed_content("inferer#background") == -1.0  # air in the network's output units
        counted = []

        def network(x: torch.Tensor) -> torch.Tensor:
            counted.append(x.shape[0])
            return torch.tanh(x)

        image, _, args, kwargs = prepare({"image": torch.rand(1, 1, 40, 36, 30), "mask": _mask()})
        out = inferer(image, network, *args, **kwargs)
        assert out.shape == image.shape
        windows[crop] = sum(counted)
    assert windows[True] < windows[False] / 3
