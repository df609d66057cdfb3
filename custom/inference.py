"""Running a bundle's inference config on a model: the library behind ``python -m custom infer``.

The configs merge in this order, the later winning, each made whole first (:func:`custom.bundles.flat_configs`: the
bundles' macros of the shared base resolved wherever the process runs):

1. ``<bundle>/configs/inference.json``;
2. the bundle's override for the input format, named in ``inference.json`` (``"format_configs": {".png":
   "inference_png2d.json"}``), when every input has that suffix;
3. the model's own record, ``model.json`` beside ``model.pt`` (written by training: its ``network_def`` and the
   intensity settings it was trained with), so a model needs no config to run;
4. the caller's config files, then the caller's ``key=value`` overrides (MONAI ids, e.g. ``patch_size``).

Before anything runs (in the configs' ``initialize``, so under ``python -m monai.bundle run`` too), the weights are
checked against ``network_def``: a model that does not fit is one :class:`custom.errors.InputError` naming the file
and the first differences, not a traceback in the middle of a run, and no output folder is created.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from custom.bundles import flat_config, flat_configs
from custom.errors import InputError, short_reason
from custom.model_record import model_config_path, read_model_record
from custom.monai_run import finish_background_writes
from custom.outputs import check_output_path, output_ext, remove_empty_folders, sct_case, sct_file_name

__all__ = [
    "as_config_data",
    "bundle_workflow",
    "check_members",
    "check_weights",
    "load_state_dict",
    "member_paths",
    "member_weights",
    "run_bundle_inference",
]

_MAX_LISTED = 3


@contextmanager
def _input_errors() -> Iterator[None]:
    """Re-raise the :class:`InputError` behind MONAI's ``RuntimeError("Failed to evaluate ...")`` (the wrapper of
    every error raised in a config expression, e.g. ``check_data``), so bad input stays one clear message."""
    try:
        yield
    except RuntimeError as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, InputError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


@contextmanager
def _no_config_root_warning() -> Iterator[None]:
    """Silence MONAI's "Not all config files are in <bundle>/configs" (said when ``--config`` is elsewhere): it only
    matters when no meta and logging files are given, and :func:`bundle_workflow` gives both."""
    logger = logging.getLogger("monai.bundle.workflows")

    def other(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Not all config files are in")

    logger.addFilter(other)
    try:
        yield
    finally:
        logger.removeFilter(other)


def as_config_data(items: Sequence[Mapping[str, Any]]) -> tuple:
    """Datalist items made safe to hand to a MONAI config as a value: a tuple.

    MONAI's ``ConfigParser`` walks the lists and dicts of a config and evaluates the strings in them (``$``
    expressions, ``@`` references, ``%`` macros), so a case id or file name such as ``"$__import__('os')..."`` in a
    list of items would run. Any other object, a tuple included, is one opaque value to it: the items stay data.
    """
    return tuple(dict(item) for item in items)


def load_state_dict(ckpt: str | os.PathLike) -> dict:
    """The weights in ``ckpt``: a plain state dict, or the ``"model"`` entry of a ``{"model": state_dict}`` file.

    Raises:
        InputError: missing file, or not a PyTorch checkpoint of weights.
    """
    import torch

    if not os.path.isfile(ckpt):
        raise InputError(f"{ckpt}: no trained model; train the bundle first or pass --ckpt")
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, foreign or pickled-code files
        raise InputError(f"{ckpt}: not a readable model checkpoint ({short_reason(e)})") from None
    if isinstance(state, dict) and set(state) == {"model"} and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise InputError(f"{ckpt}: not a model checkpoint (expected a state dict of tensors)")
    return state


def check_weights(network: Any, ckpt: str | os.PathLike) -> dict:
    """The weights in ``ckpt`` (read once); one clear :class:`InputError` when they do not load strictly into
    ``network``."""
    state = load_state_dict(ckpt)
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return state
    problems = []
    for what, names in (("missing", missing), ("unexpected", unexpected), ("shape (model vs config)", shapes)):
        if names:
            more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
            problems.append(f"{what}: {', '.join(names[:_MAX_LISTED])}{more}")
    raise InputError(
        f"{ckpt}: the weights do not fit the config's network_def ({'; '.join(problems)}); give the network settings "
        f"the model was trained with (the network_def of its {model_config_path(ckpt).name}: `python -m custom infer` "
        f"reads that file beside the model or takes --config; `monai.bundle run` takes --network_def#<key> <value>)"
    )


def member_paths(ckpt: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The models of ``--ckpt``: one file, a comma-separated list of files, or a folder (every ``model.pt`` under it,
    e.g. the members ``member_<i>/models/model.pt`` that ``python -m custom train-ensemble`` writes), in that order
    (a folder's sorted by path).

    Raises:
        InputError: a file that does not exist, or a folder without any ``model.pt``.
    """
    given = [str(p).strip() for p in ckpt] if not isinstance(ckpt, (str, os.PathLike)) else str(ckpt).split(",")
    paths: list[str] = []
    for item in (p for p in given if p):
        if os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).rglob("model.pt"))
            if not found:
                raise InputError(f"{item}: a folder without any model.pt (expected the members of an ensemble)")
            paths += found
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise InputError(f"{item}: no trained model; train the bundle first or pass --ckpt")
    if not paths:
        raise InputError(f"--ckpt {ckpt!r}: no model given")
    return paths


def check_members(ckpt: str | os.PathLike, others: Sequence[str | os.PathLike]) -> None:
    """Raise one :class:`InputError` unless every model in ``others`` has the same record (``model.json``: network
    definition and intensity settings) as ``ckpt``: the members of an ensemble share one network definition and one
    preprocessed input, so they must have been trained alike (different seeds, same recipe)."""
    first = read_model_record(ckpt)
    for other in others:
        record = read_model_record(other)
        differ = sorted(k for k in set(first) | set(record) if first.get(k) != record.get(k))
        if differ:
            raise InputError(
                f"{model_config_path(other)}: differs from {model_config_path(ckpt)} in {', '.join(differ)}; the "
                "members of an ensemble must be trained with the same recipe (only their seeds differ)"
            )


def member_weights(ckpt: str | os.PathLike, others: Sequence[str | os.PathLike], network: Any) -> list[dict]:
    """The weights of the other members of an ensemble whose first model is ``ckpt``, each checked first: its record
    must equal ``ckpt``'s (:func:`check_members`) and its weights must fit ``network`` (:func:`check_weights`).

    Raises:
        InputError: naming the member and the problem.
    """
    check_members(ckpt, others)
    return [check_weights(network, path) for path in others]


def _config_files(bundle: Path, extra: Sequence[str | os.PathLike]) -> list[Path]:
    files = [bundle / "configs" / "inference.json"] + [Path(f) for f in extra]
    for f in files:
        if not f.is_file():
            raise InputError(f"{f}: config file not found (is {bundle} a bundle folder?)")
    return files


def bundle_workflow(
    bundle: str | os.PathLike,
    configs: Sequence[str | os.PathLike] = (),
    ckpt: str | os.PathLike | None = None,
    workflow_type: str = "inference",
    **overrides: Any,
):
    """A MONAI ``ConfigWorkflow`` of the bundle's inference config for a model (see the module docstring for the order
    of the configs), not yet initialized. ``ckpt`` defaults to the config's ``ckpt_path``."""
    from monai.bundle import ConfigParser, ConfigWorkflow

    from custom.config_keys import check_override_values, check_overrides, unknown_overrides

    bundle = Path(bundle)
    files = _config_files(bundle, configs)
    inference = flat_config(files[0])
    for extra_file in files[1:]:  # the caller's overrides of inference.json, not another workflow's config
        content = ConfigParser.load_config_file(str(extra_file))
        text = json.dumps(content)
        # a key new to inference.json is fine when the file itself uses it (evaluate.json's "@nodule_threshold")
        unknown = [k for k in unknown_overrides(inference, content) if not re.search(rf"@{re.escape(k)}\b", text)]
        if unknown:
            raise InputError(
                f"{extra_file}: {', '.join(unknown[:6])}{', ...' if len(unknown) > 6 else ''}: not keys of the "
                f"inference config {files[0]} (a training config? --config takes inference overrides such as "
                "configs/evaluate.json)"
            )
    # a first, plain parse finds the model and the inputs, which choose the model's record and the format override
    parser = ConfigParser(flat_configs(files))
    check_overrides(parser.get(), overrides, where=f"{files[0]}")
    check_override_values(parser.get(), overrides, where=f"{files[0]}")
    if ckpt is not None:
        overrides["ckpt_path"] = str(ckpt)
    parser.update({**overrides, "bundle_root": str(bundle)})
    model = parser.get_parsed_content("ckpt_path")
    with _input_errors():
        items = parser.get_parsed_content("data")
    overrides["data"] = as_config_data(items)  # found once, passed on as data
    formats: Mapping[str, str] = parser.get("format_configs") or {}
    suffixes = [s for s in formats if items and all(str(it["image"]).lower().endswith(s) for it in items)]
    extra = [bundle / "configs" / formats[s] for s in suffixes[:1]]
    logging_file = bundle / "configs" / "logging.conf"
    with _no_config_root_warning():
        workflow = ConfigWorkflow(
            config_file=str(files[0]),
            meta_file=str(bundle / "configs" / "metadata.json"),
            logging_file=str(logging_file) if logging_file.is_file() else False,
            workflow_type=workflow_type,
        )
    # the configs made whole (macros resolved wherever this runs), then the model's record and the overrides
    workflow.parser.read_config(f=flat_configs(files[:1] + extra + files[1:]))
    workflow.parser.update({**read_model_record(model), **overrides, "bundle_root": str(bundle)})
    return workflow, model


def run_bundle_inference(
    bundle: str | os.PathLike,
    configs: Sequence[str | os.PathLike] = (),
    ckpt: str | os.PathLike | None = None,
    **overrides: Any,
) -> list[str]:
    """Run the bundle's inference (``bundle_workflow``) and return the paths of the sCTs written.

    Typical overrides: ``dataset_dir`` (an image, a case folder tree or a folder of images) and ``mask_file``, or
    ``datalist`` and ``split``; ``output_dir``; ``device``.

    Raises:
        InputError: no inference config, no or an unfitting model, no input, or an output that would overwrite an
            input; :class:`custom.errors.OutputError` for an output that cannot be written (the output folder is removed
            again when the run made it and left it empty).
    """
    workflow, _ = bundle_workflow(bundle, configs, ckpt, **overrides)
    parser = workflow.parser
    items = parser.get_parsed_content("data")
    output_dir = str(parser.get_parsed_content("output_dir"))
    written = [os.path.join(output_dir, sct_file_name(sct_case(item), output_ext(item["image"]))) for item in items]
    first_of: dict[str, str] = {}
    for out, item in zip(written, items):
        if out in first_of:
            raise InputError(
                f"{item['image']} and {first_of[out]}: both would be written to {out} (same case name); rename one "
                "of them or give a datalist with distinct case ids"
            )
        first_of[out] = item["image"]
        check_output_path(out, [p for it in items for p in (it.get("image"), it.get("mask"))], "output")
    out = Path(output_dir).absolute()
    created = [folder for folder in (out, *out.parents) if not folder.exists()]  # deepest first
    try:
        with _input_errors():
            workflow.initialize()
            workflow.run()
    except BaseException:  # also Ctrl-C and SIGTERM (custom.errors.Terminated)
        finish_background_writes()  # the cases before the failure keep their sCTs
        remove_empty_folders(created)  # a run that failed (e.g. disk full) leaves no empty output folder
        raise
    workflow.finalize()
    return written
