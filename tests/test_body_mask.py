"""The body mask of several images is the union of their bodies (the 8-bit protocol's CT > 10 or MR > 10), and
pix2pix_ngf validates its MAE inside that body, as the protocol scores it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ROOT

from custom.transforms import BodyMaskd


def square(size: int, top: int, left: int, side: int) -> torch.Tensor:
    image = torch.zeros(1, size, size)
    image[0, top : top + side, left : left + side] = 1.0
    return image


def test_the_body_of_two_images_is_the_union_of_their_bodies():
    ct = square(32, 4, 4, 12)  # two imperfectly registered images of one head: they overlap in part
    mr = square(32, 10, 10, 12)
    mask = BodyMaskd(["label", "image"], mask_key="mask", threshold=[0.5, 0.5])({"label": ct, "image": mr})["mask"]
    assert torch.equal(mask.bool(), (ct > 0.5) | (mr > 0.5))
    only_ct = BodyMaskd("label", mask_key="mask", threshold=0.5)({"label": ct, "image": mr})["mask"]
    assert torch.equal(only_ct.bool(), ct > 0.5)


def test_each_image_has_its_own_threshold_and_their_count_must_match():
    ct, mr = square(16, 2, 2, 6) * 100, square(16, 6, 6, 6) * 0.5  # e.g. HU and a [-1, 1] MR: different units
    mask = BodyMaskd(["label", "image"], mask_key="mask", threshold=[50, 0.25])({"label": ct, "image": mr})["mask"]
    assert int(mask.sum()) == 36 + 36 - 4  # two 6 x 6 squares overlapping by 2 x 2
    with pytest.raises(ValueError, match="2 thresholds for 3 keys"):
        BodyMaskd(["label", "image", "other"], mask_key="mask", threshold=[50, 0.25])


def test_pix2pix_validation_mae_is_measured_in_the_body_of_ct_and_mr(png_datalist):
    from monai.bundle import ConfigParser

    configs = ROOT / "bundles" / "pix2pix_ngf" / "configs"
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json"), str(configs / "train_png2d.json")])
    parser.update({"datalist": str(png_datalist), "bundle_root": str(png_datalist.parent)})
    item = parser.get_parsed_content("validate#dataset")[0]
    mask = np.asarray(item["mask"][0]) > 0
    ct_body = np.asarray(item["label"][0]) > parser["ct_body_threshold"]  # grey levels: CT is not rescaled
    mr_body = np.asarray(item["image"][0]) > parser["mr_body_threshold"]  # the MR as the network sees it
    assert ct_body.any() and mask[ct_body].all() and mask[mr_body].all()
    assert not mask.all()  # the air around the head is left out
    assert parser.get_parsed_content("validate#key_metric#val_mae").mask_key == "body_mask"


def test_images_of_different_shapes_are_one_clear_error():
    with pytest.raises(ValueError, match="differ in shape"):
        BodyMaskd(["label", "image"], mask_key="mask", threshold=0.5)(
            {"label": square(16, 2, 2, 6), "image": square(8, 1, 1, 4)}
        )
