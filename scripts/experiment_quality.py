#!/usr/bin/env python
"""2D image quality of a bundle (pix2pix_ngf, or cyclegan_cc with unpaired training) on the AANLIB slices, scored with
the shared protocol: recipes x seeds, plus the floors.

For every variant (a list of the bundle's config files) and every seed, the bundle is trained as a user would
(``python -m monai.bundle run training`` with ``train.json``, ``train_png2d.json`` and the variant's files, within the
configs' time budget or ``--minutes``), the best model (validation MAE) infers the test
subjects (``python -m custom infer``, no config: the model's ``model.json``), and ``eval2d.py`` of the shared tools
scores them (8-bit grey levels in a body mask from CT and MR; per slice). The validation subjects are inferred and
scored the same way (``<run>/val_eval.json``, a column of the report): a change to the recipe is chosen on these,
never on the test subjects. The intensity-only floors are computed on the
same split with ``aanlib_floors.py``. The report (``<work>/results.md`` and ``results.json``) has a table per variant
(mean over seeds of the per-subject means; the range over seeds) and, for the variant pairs given with ``--compare``,
the paired per-slice differences pooled over seeds with a 95% confidence interval (Student t, slices x seeds).
Each run also gets ``<run>/figure_test.png`` (MR | CT | sCT | |sCT - CT| of evenly spaced test slices) and the mean
checkerboard score of its test sCTs next to their CTs' (``custom.metrics.checkerboard_score``, about 1 without a
lattice artefact). The figures show the shared data, so they stay in the work folder, out of the repository.

``--epochs N`` replaces the time budget by a fixed number of epochs (a comparison that does not depend on what else the
machine runs). ``--every-epoch`` also saves the validated network (the generator's weight average) after every epoch and
scores each one, or every ``--score-step``-th, on the validation and test subjects (``<run>/epochs.json``, about 15 s
per epoch); the report then adds, per variant, the test scores of the epochs from ``--from-epoch`` on (mean and standard
deviation over epochs, averaged over seeds) and of the last epoch. This is for diagnosis: a run's test score can swing
by several grey levels from one epoch to the next, so one selected epoch per seed says little about a recipe. Test
scores never choose the model.

``--members NAME=N`` trains variant NAME as an ensemble (``python -m custom train-ensemble``: N members of
``--minutes / N`` each, seeds ``N * seed`` to ``N * seed + N - 1``, so repeats never share a member) and infers it with
test-time flips and shifts (``--augment``, default ``flip_shift``, the inference the bundle's docs recommend) and the
uncertainty map; ``--tta NAME`` does the same for a single model. The report then adds, per
run, the uncertainty map's slice rank correlation and voxel AUROC on the test subjects (``uncertainty_quality.py``).

``--bundle cyclegan_cc --unpaired 2,16:21,32`` trains on the MR of subjects 2 and 16 and the CT of 21 and 32 (no
subject gives both; the same subjects on both sides is the "pairs used as unpaired" arrangement); validation and test
stay paired. A variant's files are the bundle's config files, or paths of other JSON files (e.g. an ablation's
``{"lambda_cc": 0}``).

Usage (from the repository root; one training at a time, as the machine has 2 cores)::

    .venv/bin/python scripts/experiment_quality.py --work /tmp/quality --seeds 0 1 \\
        --variant quick=train_quick.json
    .venv/bin/python scripts/experiment_quality.py --work /tmp/ngf --minutes 6 --seeds 0 1 2 \\
        --variant ngf=train_quick.json --variant no_ngf=train_quick.json,train_baseline.json --compare ngf:no_ngf
    .venv/bin/python scripts/experiment_quality.py --work /tmp/ens --minutes 12 --seeds 10 11 \\
        --variant single=train_quick.json --variant ens4=train_quick.json --members ens4=4 --compare ens4:single

Reruns reuse finished runs (a run is finished when its ``eval.json`` exists).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BUNDLES = ("pix2pix_ngf", "cyclegan_cc")
SHARED = REPO.parent / "shared"
METRICS = ("mae", "psnr", "ssim", "bone_dice")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=SHARED / "data" / "aanlib_brain_ct_mr_dev")
    p.add_argument("--tools", type=Path, default=SHARED / "tools", help="folder of eval2d.py and aanlib_floors.py")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--bundle", choices=BUNDLES, default="pix2pix_ngf")
    p.add_argument("--unpaired", default=None, help="MR:CT training subjects, e.g. 2,16:21,32 (cyclegan_cc)")
    p.add_argument(
        "--val",
        default="20",
        help="validation subjects (model selection); 20 by default: its CT window differs from the others' "
        "(soft-tissue grey level 158 against 89-111), which teaches a brighter brain when it is a training subject",
    )
    p.add_argument("--test", default="28", help="test subjects (never seen by training or model selection)")
    p.add_argument("--minutes", type=float, default=None, help="training budget per run (default: the configs')")
    p.add_argument("--epochs", type=int, default=None, help="a fixed number of epochs instead of --minutes")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variant", action="append", required=True, help="NAME=config.json[,config.json...]")
    p.add_argument("--compare", action="append", default=[], help="A:B, paired per-slice differences A - B")
    p.add_argument("--every-epoch", action="store_true", help="save and score the validated network of every epoch")
    p.add_argument("--score-step", type=int, default=1, help="with --every-epoch: score every N-th epoch and the last")
    p.add_argument("--from-epoch", type=int, default=10, help="with --every-epoch: summarise the epochs from this on")
    p.add_argument(
        "--members",
        action="append",
        default=[],
        help="NAME=N: train variant NAME as an ensemble of N members in the run's budget (train-ensemble; member "
        "seeds N*seed ... N*seed+N-1); needs --minutes",
    )
    p.add_argument(
        "--tta",
        action="append",
        default=[],
        help="NAME: infer variant NAME with test-time augmentation (--augment) and score its uncertainty map "
        "(ensembles are scored too)",
    )
    p.add_argument(
        "--augment",
        default="flip_shift",
        choices=("flip", "shift", "flip_shift"),
        help="the test-time augmentation of ensembles and --tta variants (custom infer --tta)",
    )
    args = p.parse_args(argv)
    for folder in (args.data, args.tools):
        if not folder.is_dir():
            p.exit(2, f"error: {folder}: not found\n")
    args.configs = REPO / "bundles" / args.bundle / "configs"
    if args.unpaired is not None:
        mr, _, ct = args.unpaired.partition(":")
        args.unpaired = ([s for s in mr.split(",") if s], [s for s in ct.split(",") if s])
        if not all(args.unpaired):
            p.exit(2, f"error: --unpaired {mr}:{ct}: expected MR subjects:CT subjects, e.g. 2,16:21,32\n")
    variants = {}
    for text in args.variant:
        name, _, files = text.partition("=")
        variants[name] = [Path(f) if Path(f).is_absolute() else args.configs / f for f in files.split(",") if f]
        for f in variants[name]:
            if not f.is_file():
                p.exit(2, f"error: --variant {text}: {f} not found\n")
    args.variants = variants
    args.members = {name: number for name, _, number in (m.partition("=") for m in args.members)}
    for name, number in args.members.items():
        if name not in variants or not number.isdigit() or int(number) < 2:
            p.exit(2, f"error: --members {name}={number}: expected a variant's NAME=N with N >= 2\n")
        if args.minutes is None or args.epochs is not None or args.every_epoch:
            p.exit(
                2,
                f"error: --members {name}={number}: give the ensemble's budget with --minutes (not --epochs; "
                "--every-epoch scores single runs only)\n",
            )
    args.members = {name: int(number) for name, number in args.members.items()}
    for name in args.tta:
        if name not in variants:
            p.exit(2, f"error: --tta {name}: not a variant\n")
    args.pairs = [tuple(c.split(":")) for c in args.compare]
    for pair in args.pairs:
        if len(pair) != 2 or not set(pair) <= set(variants):
            p.exit(2, f"error: --compare {':'.join(pair)}: expected A:B with A and B among the variants\n")
    return args


def run(cmd: list[str], log: Path) -> float:
    start = time.time()
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        if subprocess.run([str(c) for c in cmd], cwd=REPO, stdout=f, stderr=subprocess.STDOUT).returncode:
            raise RuntimeError(f"command failed, see {log}")
    return time.time() - start


def infer(
    args: argparse.Namespace, model: Path, datalist: Path, split: str, output: Path, log: Path, augment: bool = False
) -> None:
    """The bundle's inference of one datalist split (``python -m custom infer``; the network from ``model.json``; a
    folder of members is an ensemble). With ``augment``: also on the augmented MRs (``--augment``), and the
    uncertainty map."""
    cmd = [sys.executable, "-m", "custom", "infer", "--bundle", args.configs.parent, "--ckpt", model]
    if augment:
        cmd += ["--tta", args.augment, "--uncertainty", "true"]
    run(cmd + ["--datalist", datalist, "--split", split, "--output", output], log)


def uncertainty(datalist: Path, split: str, pred: Path, out: Path, log: Path) -> dict:
    """``scripts/uncertainty_quality.py`` on a split's sCTs and uncertainty maps: slice rank correlation, AUROC."""
    cmd = [sys.executable, REPO / "scripts" / "uncertainty_quality.py", "--datalist", datalist, "--split", split]
    with open(log, "a", encoding="utf-8") as f:
        text = subprocess.run([str(c) for c in cmd + ["--pred", pred]], cwd=REPO, stdout=subprocess.PIPE, stderr=f,
                              check=True, text=True).stdout  # fmt: skip
    out.write_text(text)
    return json.loads(text)


def eval2d(
    args: argparse.Namespace, pred: Path, pattern: str, out: Path, log: Path, subjects: str | None = None
) -> dict:
    cmd = [sys.executable, args.tools / "eval2d.py", "--pred", pred, "--gt", args.data / "CT"]
    cmd += ["--mr", args.data / "MRI", "--manifest", args.data / "manifest.csv", "--subjects", subjects or args.test]
    cmd += ["--pred-pattern", pattern]
    run(cmd + ["--per-slice", "--out", out], log)
    return json.loads(out.read_text())


def test_figure(args: argparse.Namespace, pred: Path, out: Path, rows: int = 4) -> dict:
    """MR | CT | sCT | |sCT - CT| of ``rows`` evenly spaced test slices, and the checkerboard scores of sCTs and CTs."""
    from PIL import Image

    from custom.metrics import checkerboard_score
    from custom.visualize import Column, save_figure

    def read(path: Path) -> np.ndarray:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"), dtype=np.float32)

    predictions = sorted(pred.glob("*_sct.png"))
    triples = [(read(args.data / "MRI" / f"{p.name[:-8]}.png"), read(args.data / "CT" / f"{p.name[:-8]}.png"), read(p))
               for p in predictions]  # fmt: skip
    picked = np.linspace(0, len(triples) - 1, min(rows, len(triples))).round().astype(int)
    columns = [Column("MR", (0, 255), "grey level"), Column("CT", (0, 255), "grey level"),
               Column("sCT", (0, 255), "grey level"), Column("|sCT - CT|", (0, 64), "grey level", "magma")]  # fmt: skip
    save_figure(
        [[a.T for a in (mr, ct, sct, np.abs(sct - ct))] for mr, ct, sct in (triples[i] for i in picked)],
        columns,
        out,
        title=f"test subject {args.test}",
        row_labels=[predictions[i].name[:-8] for i in picked],
        orientation="png",  # arrays transposed above: MONAI's PIL layout, which "png" turns back
    )
    return {
        "checkerboard_sct": float(np.mean([checkerboard_score(sct) for _, _, sct in triples])),
        "checkerboard_ct": float(np.mean([checkerboard_score(ct) for _, ct, _ in triples])),
    }


# Appended to the validation handlers (MONAI's "+" merge key): save the network that validation scores (the generator,
# or its weight average) after every epoch (models/epochs/g_model_epoch=N.pt).
SAVE_EVERY_EPOCH = {
    "+validate#handlers": [
        {"_target_": "CheckpointSaver", "save_dir": "$@ckpt_dir + '/epochs'",
         "save_dict": {"model": "@validate#evaluator#network"},
         "save_interval": 1, "epoch_level": True, "n_saved": None, "file_prefix": "g"},
    ]
}  # fmt: skip


def score_epochs(args: argparse.Namespace, datalist: Path, work: Path) -> dict:
    """Validation and test scores of every saved epoch's generator: ``{epoch: {"val": means, "test": means}}``."""
    out_path = work / "epochs.json"
    scores = json.loads(out_path.read_text()) if out_path.exists() else {}
    snapshots = {int(re.search(r"=(\d+)\.pt$", p.name)[1]): p for p in (work / "models" / "epochs").glob("*.pt")}
    last = max(snapshots, default=0)
    pending = sorted({e for e in snapshots if e % args.score_step == 0 or e == last} - {int(e) for e in scores})
    if not pending:
        return scores
    data = json.loads(datalist.read_text())
    both = work / "datalist_val_test.json"  # one inference per epoch for both subjects
    both.write_text(json.dumps({**data, "test": data["validation"] + data["test"]}))
    record = (work / "models" / "model.json").read_text()  # the network's config, the same for every epoch
    for epoch in pending:
        snapshot = snapshots[epoch]
        snapshot.with_suffix(".json").write_text(record)
        pred = work / "epoch_pred" / str(epoch)
        infer(args, snapshot, both, "test", pred, work / "epochs.log")
        row = {}
        for split, subjects in (("val", args.val), ("test", args.test)):
            out = pred / f"eval_{split}.json"
            row[split] = eval2d(args, pred, "{stem}_sct.png", out, work / "epochs.log", subjects)["subject_mean"]
        scores[str(epoch)] = row
        out_path.write_text(json.dumps(scores, indent=1) + "\n")
    return scores


def train_and_score(args: argparse.Namespace, datalist: Path, name: str, seed: int) -> dict:
    work = args.work / f"{name}_seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    members = args.members.get(name)
    model = work / "members" if members else work / "models" / "model.pt"
    spread_scored = name in args.tta or bool(members)  # augmented (and members): the uncertainty map is scored
    training_list = args.work / "datalist_unpaired.json" if args.unpaired else datalist
    if not (work / "eval.json").exists() and members:  # N runs of minutes / N each, one after the other
        configs = [args.configs / "train_png2d.json", *args.variants[name]]
        train = [sys.executable, "-m", "custom", "train-ensemble", args.configs.parent, model, "--members", members]
        train += ["--minutes", args.minutes, "--config", ",".join(map(str, configs)), "--seed", members * seed]
        seconds = run(train + ["--datalist", training_list], work / "train.log")
        (work / "train_seconds.txt").write_text(f"{seconds:.1f}\n")
    elif not (work / "eval.json").exists():
        configs = [args.configs / "train.json", args.configs / "train_png2d.json", *args.variants[name]]
        if args.every_epoch:
            configs.append(args.work / "save_every_epoch.json")
        train = [sys.executable, "-m", "monai.bundle", "run", "training"]
        train += ["--config_file", str([str(c) for c in configs]), "--bundle_root", work, "--datalist", training_list]
        train += ["--ckpt_dir", work / "models"]
        train += ["--output_dir", work / "runs", "--seed", seed, "--resume", "False"]
        if args.epochs is not None:
            train += ["--minutes", "None", "--epochs", args.epochs]
        elif args.minutes is not None:
            train += ["--minutes", args.minutes]
        seconds = run(train, work / "train.log")
        (work / "train_seconds.txt").write_text(f"{seconds:.1f}\n")
    if not (work / "eval.json").exists():
        infer(args, model, datalist, "test", work / "pred", work / "infer.log", spread_scored)
        eval2d(args, work / "pred", "{stem}_sct.png", work / "eval.json", work / "eval.log")
    if not (work / "val_eval.json").exists():  # the validation subjects' scores: what a change may be chosen on
        infer(args, model, datalist, "validation", work / "val_pred", work / "infer.log", spread_scored)
        eval2d(args, work / "val_pred", "{stem}_sct.png", work / "val_eval.json", work / "eval.log", args.val)
    if spread_scored and not (work / "uncertainty.json").exists():
        uncertainty(datalist, "test", work / "pred", work / "uncertainty.json", work / "eval.log")
    spread = json.loads((work / "uncertainty.json").read_text()) if spread_scored else {}
    result = json.loads((work / "eval.json").read_text())
    if not (work / "checkerboard.json").exists():
        (work / "checkerboard.json").write_text(json.dumps(test_figure(args, work / "pred", work / "figure_test.png")))
    checkerboard = json.loads((work / "checkerboard.json").read_text())
    epochs = score_epochs(args, datalist, work) if args.every_epoch else {}
    log = (work / "train.log").read_text(encoding="utf-8", errors="replace")
    return {
        "variant": name,
        "seed": seed,
        "train_minutes": float((work / "train_seconds.txt").read_text()) / 60,
        "epochs": len(re.findall(r"(?:Pix2Pix|CycleGan)Trainer - INFO - Epoch\[\d+\] Complete", log)),
        "subject_mean": result["subject_mean"],
        "val_subject_mean": json.loads((work / "val_eval.json").read_text())["subject_mean"],
        **checkerboard,
        "slices": {row["file"]: {k: row[k] for k in METRICS} for row in result["slices"]},
        "epoch_scores": epochs,
        "uncertainty": {k: spread[k] for k in ("slice_rank_correlation", "error_auroc") if k in spread},
    }


def paired(results: list[dict], a: str, b: str) -> dict:
    """Per-slice differences a - b pooled over the seeds both have: mean, 95% CI, n, and slices where a is better."""
    from scipy import stats

    out = {}
    seeds_of = {v: {r["seed"] for r in results if r["variant"] == v} for v in (a, b)}
    seeds = sorted(seeds_of[a] & seeds_of[b])
    runs = {(r["variant"], r["seed"]): r["slices"] for r in results}
    for key in METRICS:
        diffs = []
        for seed in seeds:
            sa, sb = runs[(a, seed)], runs[(b, seed)]
            diffs += [sa[f][key] - sb[f][key] for f in sa if f in sb]
        d = np.array([x for x in diffs if x is not None and math.isfinite(x)])
        if d.size < 2:
            continue
        half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
        better = int(np.sum(d < 0) if key == "mae" else np.sum(d > 0))
        out[key] = {"mean": float(d.mean()), "ci95": [float(d.mean() - half), float(d.mean() + half)], "n": int(d.size)}
        out[key]["better"] = better
    return {"a": a, "b": b, "seeds": seeds, "metrics": out}


def budget_text(args: argparse.Namespace) -> str:
    if args.epochs is not None:
        return f"{args.epochs} epochs per run"
    if args.minutes is not None:
        return f"{args.minutes:g} min of training per run (wall clock, this machine)"
    return "the configs' training budget per run (wall clock, this machine)"


def markdown(args: argparse.Namespace, results: list[dict], floors: dict, comparisons: list[dict]) -> str:
    lines = [
        f"Split by subject: test {args.test}, validation {args.val}, training the others; "
        + budget_text(args)
        + f"; seeds {args.seeds}.",
        "",
        "| method | runs | epochs | MAE ↓ | PSNR ↑ | SSIM ↑ | bone Dice ↑ | checkerboard sCT (CT) "
        "| validation MAE, SSIM, bone Dice (per seed) | uncertainty: rank corr., AUROC (per seed) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in args.variants:
        runs = [r for r in results if r["variant"] == name]
        cells = []
        for key in METRICS:
            values = [r["subject_mean"][key] for r in runs]
            spread = f" ({min(values):.3g}–{max(values):.3g})" if len(values) > 1 else ""
            cells.append(f"{np.mean(values):.4g}{spread}")
        epochs = "/".join(str(r["epochs"]) for r in runs)
        sct_board, ct_board = (np.mean([r[f"checkerboard_{k}"] for r in runs]) for k in ("sct", "ct"))
        board = f"{sct_board:.2f} ({ct_board:.2f})"
        val = " / ".join("{mae:.1f}, {ssim:.3f}, {bone_dice:.3f}".format(**r["val_subject_mean"]) for r in runs)
        spread = " / ".join("{slice_rank_correlation:.2f}, {error_auroc:.3f}".format(**r["uncertainty"])
                            for r in runs if r.get("uncertainty"))  # fmt: skip
        lines.append(f"| {name} | {len(runs)} | {epochs} | " + " | ".join(cells) + f" | {board} | {val} | {spread} |")
    for name, summary in floors.items():
        lines.append(f"| floor: {name} | - | - | " + " | ".join(f"{summary[k]:.4g}" for k in METRICS) + " | | | |")
    if args.every_epoch:
        keys = ("mae", "ssim", "bone_dice")
        lines += ["", f"Test scores of the epochs from {args.from_epoch} on (mean ± sd over epochs, averaged"
                  " over seeds) and of the last epoch (averaged over seeds):", ""]  # fmt: skip
        lines += ["| method | epochs | " + " | ".join(f"{k}, epochs" for k in keys) + " | "
                  + " | ".join(f"{k}, last" for k in keys) + " |", "|---" * 8 + "|"]  # fmt: skip
        for name in args.variants:
            runs = [r["epoch_scores"] for r in results if r["variant"] == name and r.get("epoch_scores")]
            if not runs:
                continue
            spans = [{k: [s["test"][k] for e, s in ep.items() if int(e) >= args.from_epoch] for k in keys}
                     for ep in runs]  # fmt: skip
            last = [ep[max(ep, key=int)]["test"] for ep in runs]
            cells = [f"{np.mean([np.mean(s[k]) for s in spans]):.4g} ± {np.mean([np.std(s[k]) for s in spans]):.2g}"
                     for k in keys]  # fmt: skip
            cells += [f"{np.mean([x[k] for x in last]):.4g}" for k in keys]
            counts = "/".join(str(len(s["mae"])) for s in spans)
            lines.append(f"| {name} | {counts} | " + " | ".join(cells) + " |")
    for c in comparisons:
        lines += ["", f"Paired per-slice differences {c['a']} − {c['b']} (seeds {c['seeds']}, 95% CI):", ""]
        lines += ["| metric | mean | 95% CI | slices where " + c["a"] + " is better |", "|---|---|---|---|"]
        for key, s in c["metrics"].items():
            lines.append(f"| {key} | {s['mean']:+.4f} | [{s['ci95'][0]:+.4f}, {s['ci95'][1]:+.4f}] | "
                         f"{s['better']}/{s['n']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    datalist = args.work / "datalist.json"
    if not datalist.exists():
        cmd = [sys.executable, "-m", "custom", "datalist", "--root", args.data, "--layout", "paired2d"]
        run(cmd + ["--out", datalist, "--val_subjects", args.val, "--test_subjects", args.test], args.work / "log.txt")
    if args.unpaired:  # the MR of some training subjects, the CT of others; validation and test stay paired
        data = json.loads(datalist.read_text())
        unpaired = {k: v for k, v in data.items() if k != "training"}
        unpaired["training_mr"] = [{k: i[k] for k in ("image", "case", "subject")} for i in data["training"]
                                   if i["subject"] in args.unpaired[0]]  # fmt: skip
        unpaired["training_ct"] = [{k: i[k] for k in ("label", "case", "subject")} for i in data["training"]
                                   if i["subject"] in args.unpaired[1]]  # fmt: skip
        (args.work / "datalist_unpaired.json").write_text(json.dumps(unpaired, indent=1) + "\n")
    floors = {}
    for name in ("linear", "lut"):
        out = args.work / f"floor_{name}.json"
        if not out.exists():
            fit = ",".join(sorted({r["subject"] for r in json.loads(datalist.read_text())["training"]} | {args.val}))
            cmd = [sys.executable, args.tools / "aanlib_floors.py", "--src", args.data, "--out", args.work / "floors"]
            run(cmd + ["--fit-split", fit, "--apply-split", args.test], args.work / "log.txt")
            eval2d(args, args.work / "floors" / name, "{stem}.png", out, args.work / "log.txt")
        floors[name] = json.loads(out.read_text())["subject_mean"]
    if args.every_epoch:
        (args.work / "save_every_epoch.json").write_text(json.dumps(SAVE_EVERY_EPOCH, indent=1) + "\n")
    results = [train_and_score(args, datalist, name, seed) for seed in args.seeds for name in args.variants]
    comparisons = [paired(results, a, b) for a, b in args.pairs]
    report = {"settings": {k: str(v) for k, v in vars(args).items()}, "results": results, "floors": floors}
    report["comparisons"] = comparisons
    (args.work / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(args, results, floors, comparisons)
    (args.work / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
