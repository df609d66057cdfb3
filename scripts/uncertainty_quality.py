"""Does the uncertainty map of an ensemble mean something? Over a datalist split whose sCTs and uncertainty maps are in
a folder (``infer ... --uncertainty``), inside the body mask:

- Spearman's rank correlation between each slice's mean uncertainty and its MAE (slices: 2D cases, or the axial
  slices of volumes);
- the AUROC of the uncertainty for the voxels whose error is above ``--threshold`` (50: grey levels for 8-bit data,
  HU otherwise), pooled over the cases.

The body mask is the case's ``mask`` when the datalist has one, else the CT above ``--body-threshold`` (filled).
Formulas: :mod:`custom.metrics.uncertainty`. Figures, not assertions.

    python scripts/uncertainty_quality.py --datalist stacked.json --split test --pred out/ --threshold 50
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from custom.data.datalist import read_datalist
from custom.images import read_image
from custom.metrics.uncertainty import error_auroc, slice_rank_correlation, slice_statistics
from custom.outputs import output_ext, sct_case, sct_file_name, uncertainty_file_name
from custom.transforms import body_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datalist", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--pred", required=True, help="folder of <case>_sct.* and <case>_sct_std.nii.gz")
    parser.add_argument("--threshold", type=float, default=50.0, help="a large error: above this (CT units)")
    parser.add_argument("--body-threshold", type=float, default=None, help="default 10 (8-bit) or -500 HU")
    args = parser.parse_args()
    data = read_datalist(args.datalist)
    eight_bit = bool(data.get("eight_bit", False))
    body_threshold = args.body_threshold if args.body_threshold is not None else 10.0 if eight_bit else -500.0
    spreads, maes, voxel_spread, voxel_error = [], [], [], []
    for item in data[args.split]:
        case = sct_case(item)
        sct, _ = read_image(f"{args.pred}/{sct_file_name(case, output_ext(item['image']))}")
        spread, _ = read_image(f"{args.pred}/{uncertainty_file_name(case)}")
        ct, _ = read_image(item["label"])
        mask = read_image(item["mask"])[0] > 0 if item.get("mask") else body_mask(ct[None], body_threshold)[0] > 0
        slice_spread, slice_mae = slice_statistics(sct, ct, spread, mask)
        spreads += slice_spread
        maes += slice_mae
        voxel_spread.append(np.asarray(spread, np.float64)[mask])
        voxel_error.append(np.abs(np.asarray(sct, np.float64) - np.asarray(ct, np.float64))[mask])
    spread_all, error_all = np.concatenate(voxel_spread), np.concatenate(voxel_error)
    result = {
        "cases": len(data[args.split]),
        "slices": len(maes),
        "slice_rank_correlation": slice_rank_correlation(spreads, maes),
        "threshold": args.threshold,
        "voxels": int(error_all.size),
        "voxels_above_threshold": int((error_all > args.threshold).sum()),
        "error_auroc": error_auroc(spread_all, error_all, args.threshold),
        "mean_uncertainty": float(spread_all.mean()),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
