"""An ensemble within a training budget: ``python -m custom train-ensemble BUNDLE OUTPUT --members 2 --minutes 12``.

Trains ``members`` models of one recipe one after the other, each with its own seed (``seed``, ``seed + 1``, ...) and
``minutes / members`` of the budget, as ``python -m monai.bundle run training`` would (each member is such a run, in
its own process), into ``OUTPUT/member_<i>/models`` (and its logs and figures into ``OUTPUT/member_<i>/runs``).
``python -m custom infer BUNDLE ... --ckpt OUTPUT`` then runs them as an ensemble.

Why several short runs can beat one long one at the same cost: the quick recipes reach their best validation score
early (on new subjects after 3-4 of the 12 minutes of pix2pix_ngf's on a CPU with bf16), and the errors of models
trained with different seeds are partly independent, so their average is closer to the CT than a single model. Two
members is the default: for pix2pix_ngf, two 6-minute members beat four 3-minute ones on validation (the shorter
members stop before their plateau); the gain over one model varies with how good that one model's draw is (the
bundles' docs).

A member whose run finished is kept (``member_<i>/models/member.json`` records its seed and minutes); running the
same command again after an interruption resumes the interrupted member from its last checkpoint (the bundles'
``resume``) and trains the ones not begun.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from custom.errors import InputError

__all__ = ["MEMBER_RECORD", "member_command", "train_ensemble"]

MEMBER_RECORD = "member.json"  # written beside a finished member's model.pt


def _config_files(bundle: Path, configs: Sequence[str | os.PathLike]) -> list[str]:
    files = [bundle / "configs" / "train.json"]
    for name in configs:
        given = Path(name)
        files.append(given if given.is_file() else bundle / "configs" / given)
    for f in files:
        if not f.is_file():
            raise InputError(f"{f}: config file not found (is {bundle} a bundle folder?)")
    return [str(f) for f in files]


def member_command(
    bundle: Path, configs: Sequence[str], member: Path, seed: int, minutes: float, overrides: Mapping[str, Any]
) -> list[str]:
    """The ``python -m monai.bundle run training`` command line of one member."""
    command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", json.dumps(list(configs))]
    command += ["--meta_file", str(bundle / "configs" / "metadata.json")]
    settings = {
        **overrides,
        "seed": seed,
        "minutes": minutes,
        "ckpt_dir": str(member / "models"),
        "output_dir": str(member / "runs"),
    }
    for key, value in settings.items():
        command += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return command


def train_ensemble(
    bundle: str,
    output: str,
    members: int = 2,
    minutes: float = 12.0,
    config: Any = None,
    seed: int = 0,
    *,
    report: Callable[[str], None] | None = None,
    **overrides: Any,
) -> str:
    """Train an ensemble of ``members`` models of ``bundle``'s recipe in ``minutes`` of training in all.

    Args:
        bundle: bundle folder, e.g. bundles/pix2pix_ngf.
        output: folder of the members (``member_<i>/models/model.pt``); give it to ``infer --ckpt``.
        members: how many models (>= 2).
        minutes: the training budget of the whole ensemble; each member gets ``minutes / members``.
        config: the recipe's config files over ``train.json`` (names in the bundle's ``configs/`` or paths), e.g.
            ``train_quick.json,train_png2d.json``.
        seed: the first member's seed; member i uses ``seed + i``.
        report: called with a line of progress before each member (the command line passes ``print``).
        overrides: any ``--key value`` of the training config (e.g. ``--datalist my.json``), the same for every
            member.

    Returns:
        The paths of the members' models, one per line.

    Raises:
        InputError: a bad number of members or minutes, a missing config file, or a member whose training failed
            (its log is in ``member_<i>/runs``; the members before it are kept).
    """
    if isinstance(members, bool) or not isinstance(members, int) or members < 2:
        raise InputError(f"--members {members!r}: expected a whole number >= 2 (one model needs no ensemble)")
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0:
        raise InputError(f"--minutes {minutes!r}: expected a number > 0 (the whole ensemble's budget)")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"--seed {seed!r}: expected a whole number >= 0")
    for key in ("seed", "minutes", "ckpt_dir", "output_dir"):
        if key in overrides:
            raise InputError(f"--{key}: set by train-ensemble for each member; not an override here")
    bundle_dir = Path(bundle)
    names = config if isinstance(config, (list, tuple)) else str(config or "").split(",")
    configs = _config_files(bundle_dir, [n.strip() for n in names if str(n).strip()])
    per_member = float(minutes) / members
    models = []
    for i in range(members):
        member = Path(output) / f"member_{i}"
        model = member / "models" / "model.pt"
        record = member / "models" / MEMBER_RECORD
        models.append(str(model))
        if record.is_file() and model.is_file():
            if report:
                report(f"member {i}: trained already ({model})")
            continue
        if report:
            report(f"member {i} of {members}: seed {seed + i}, {per_member:g} min -> {member}")
        result = subprocess.run(member_command(bundle_dir, configs, member, seed + i, per_member, overrides))
        if result.returncode != 0 or not model.is_file():
            raise InputError(
                f"{member}: member {i}'s training failed (exit code {result.returncode}); see its output above and "
                f"{member / 'runs'}; run the same command again to resume it"
            )
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seed": seed + i, "minutes": per_member, "members": members}) + "\n")
        os.replace(tmp, record)
    return "\n".join(models)
