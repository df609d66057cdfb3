"""One-line inference for people who do not write configs: ``python -m custom infer``.

    python -m custom infer --bundle bundles/pix2pix_ngf --input MR.nii.gz|DIR --output OUT_DIR [--mask M]
        [--ckpt models/model.pt] [--device cpu] [--config extra.json]

It runs the bundle's ``configs/inference.json`` (plus ``configs/inference_png2d.json`` for PNG input) through MONAI's
``ConfigWorkflow`` and writes ``<OUT_DIR>/<case>_sct.nii.gz`` per input (``.png`` for PNG input): int16 HU on the
input MR's exact grid. It refuses to write over any of its inputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from custom.data.inputs import inference_items
from custom.io import InputError, case_of, is_png

__all__ = ["infer_command", "run_bundle_inference"]


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def run_bundle_inference(
    bundle: str | os.PathLike,
    items: list[dict],
    output: str | os.PathLike,
    ckpt: str | os.PathLike | None = None,
    extra_configs: list[str] | None = None,
    **overrides: Any,
) -> list[str]:
    """Run ``<bundle>/configs/inference.json`` (+ ``extra_configs``, merged in order) on ``items``; return the paths
    written.

    Raises:
        InputError: no inference config or no trained model in the bundle, or an output would overwrite an input.
    """
    from monai.bundle import ConfigWorkflow

    configs = Path(bundle) / "configs"
    config_files = [configs / "inference.json"]
    png = all(is_png(item["image"]) for item in items)
    if png:
        config_files.append(configs / "inference_png2d.json")
    config_files += [Path(f) for f in extra_configs or []]
    for f in config_files:
        if not f.is_file():
            raise InputError(f"{f}: bundle config not found (is {bundle} a bundle folder?)")
    ext = ".png" if png else ".nii.gz"
    inputs = [p for item in items for p in (item.get("image"), item.get("mask")) if p]
    # the same naming as the bundle's SaveImaged (custom.io.sct_name_formatter)
    written = [os.path.join(str(output), f"{case_of(item['image'])}_sct{ext}") for item in items]
    for out in written:
        if any(_same_file(out, p) for p in inputs):
            raise InputError(f"{out}: the output would overwrite an input; choose another --output folder")
    if ckpt is not None:
        overrides["ckpt_path"] = str(ckpt)
    workflow = ConfigWorkflow(
        config_file=[str(f) for f in config_files],
        meta_file=str(configs / "metadata.json"),
        logging_file=str(configs / "logging.conf") if (configs / "logging.conf").is_file() else False,
        workflow_type="inference",
        bundle_root=str(bundle),
        output_dir=str(output),
        data=items,
        **overrides,
    )
    model = workflow.parser.get_parsed_content("ckpt_path")
    if not os.path.isfile(model):
        raise InputError(f"{model}: no trained model; train the bundle first or pass --ckpt")
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return written


def infer_command(
    bundle: str,
    input: str,
    output: str,
    mask: str | None = None,
    ckpt: str | None = None,
    device: str | None = None,
    config: str | None = None,
) -> int:
    """Synthesize CT for one MR image or a folder of them.

    Args:
        bundle: bundle folder, e.g. ``bundles/pix2pix_ngf``.
        input: MR image (NIfTI, MHA, PNG), a SynthRAD-style folder (``<ID>/mr.nii.gz`` [+ ``mask.nii.gz``]) or a
            folder of images.
        output: output folder (created); never the place of an input file.
        mask: body mask of a single input image; the sCT is set to air outside it.
        ckpt: model weights (default ``<bundle>/models/model.pt``).
        device: e.g. ``cpu`` or ``cuda:0`` (default: a GPU when available).
        config: an extra config file merged over ``inference.json``, e.g. the network size a model was trained with
            (``configs/demo.json`` for the ``make demo`` model).
    """
    items = inference_items(dataset_dir=input, mask=mask)
    overrides = {} if device is None else {"device": f"$torch.device('{device}')"}
    extra = [config] if config else None
    written = run_bundle_inference(bundle, items, output, ckpt=ckpt, extra_configs=extra, **overrides)
    for path in written:
        print(path)
    return 0
