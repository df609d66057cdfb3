"""Command line: ``python -m custom <command> [--flags]`` (built with fire; ``--help`` on any command).

Commands: ``demo-data``, ``demo-lung-data``, ``datalist``, ``dicom2nifti``, ``stack-slices``, ``unstack-slices``,
``check``, ``evaluate``, ``infer``, ``train-ensemble``, ``dose-eval``.
Bad input stops with one line naming the file and the problem (exit code 2), never a traceback (``--debug`` or
``SCT_DEBUG=1`` shows it).

This is the only module that parses arguments (and, with :mod:`custom.monai_run`, the only one that prints): the
library functions it calls return results and raise :class:`custom.errors.InputError`. Heavy imports happen inside the
commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import functools
import gc
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

from custom.errors import InputError, stop_on_signals, user_error
from custom.monai_run import debug_requested, exit_now, interrupted, user_errors_logged_in_one_line
from custom.outputs import check_output_path

__all__ = ["main", "COMMANDS"]


# ------------------------------------------------------------------------------------------------------ helpers
def _text_list(value: Any) -> list[str] | None:
    """A list flag as fire gives it: None, one value, a tuple/list, or a ``"a,b"`` / ``"a b"`` string."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def parse_range(value: Any) -> tuple[float, float] | None:
    """``--range`` as given by fire: ``None``, a tuple/list ``(0, 255)`` or a string ``"0,255"`` / ``"0 255"``."""
    if value is None:
        return None
    parts = _text_list(value.strip().strip("[]()") if isinstance(value, str) else value)
    try:
        lo, hi = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise InputError(f"--range: expected two numbers lo,hi (e.g. --range 0,255), got {value!r}") from None
    if not hi > lo:
        raise InputError(f"--range: expected lo < hi, got {value!r}")
    return lo, hi


# ----------------------------------------------------------------------------------------------------- commands
def _printed(target: str) -> Callable:
    """The library function ``module:function`` as a command that prints its result (its ``str``) and exits 0.

    Imported on use so that ``--help`` of other commands stays fast; fire reads the function's own signature and
    docstring through ``functools.wraps``.
    """
    module, name = target.split(":")
    func = getattr(importlib.import_module(module), name)

    @functools.wraps(func)
    def command(*args, **kwargs):
        if "report" in inspect.signature(func).parameters:  # a long command's progress lines, as they happen
            kwargs["report"] = functools.partial(print, flush=True)
        print(func(*args, **kwargs))
        return 0

    return command


def check(datalist: str, eight_bit: bool | None = None, allow_overlap: bool = False):
    """Check every case of a datalist; print a table of every problem. Exit code 0 if none, 1 otherwise. For 8-bit
    data it also warns of subjects whose CTs were windowed differently (the exit code does not change).

    Args:
        datalist: datalist JSON.
        eight_bit: 8-bit grey levels, PNG slices or stacked volumes (default: the datalist's own eight_bit flag).
        allow_overlap: a case in two splits (e.g. training and test) is a warning, not a problem.
    """
    from custom.data.check import check_datalist, ct_level_warnings, format_table
    from custom.data.datalist import datalist_splits, read_datalist

    data = read_datalist(datalist)
    problems = check_datalist(data, eight_bit=eight_bit, allow_overlap=bool(allow_overlap))
    n_cases = sum(len(data[s]) for s in datalist_splits(data))
    if bool(data.get("eight_bit", False)) if eight_bit is None else eight_bit:
        for file, warning in ct_level_warnings(data):
            print(f"WARNING {file}: {warning}")
    if not problems:
        print(f"OK: {n_cases} cases, no problems")
        return 0
    print(format_table(problems))
    print(f"\n{len(problems)} problem(s) in {len({f for f, _ in problems})} file(s); {n_cases} cases checked")
    return 1


def evaluate(
    *extra: Any,
    pred: str | None = None,
    ct: str | None = None,
    mask: str | None = None,
    protocol: str = "synthrad2023",
    json: str | None = None,
    datalist: str | None = None,
    pred_dir: str | None = None,
    out_dir: str | None = None,
    range: Any = None,
    region_mask: str | None = None,
    bone_threshold: float = 250.0,
    split: str | None = None,
):
    """Score synthetic CTs with the SynthRAD metrics (one case, or every case of a datalist).

    Args:
        extra: nothing, except the second value of ``--range lo hi``.
        pred: synthetic CT file (single-case mode).
        ct: reference CT file (single-case mode); pred must be on its grid.
        mask: body mask file (single-case mode); default: the whole image.
        protocol: synthrad2023 (MAE, PSNR, SSIM), synthrad2025 (MAE, PSNR, MS-SSIM) or all (both, prefixed names).
        json: single-case mode: write the metrics to this JSON file.
        datalist: datalist JSON (datalist mode); scores its "test" list ("validation" if "test" is empty).
        pred_dir: datalist mode: folder of the predictions <case>_sct.nii.gz (.png for 8-bit datalists).
        out_dir: datalist mode: where metrics.csv and summary.json go (default: pred_dir).
        range: value range lo,hi replacing the HU ranges, e.g. 0,255 (automatic for PNG / 8-bit datalists).
        region_mask: single case: region mask file; datalist mode: key of the items holding it. Adds local_ssim.
        bone_threshold: threshold of bone_dice, image units (HU).
        split: datalist mode: the list to score instead of test/validation.
    """
    from custom.metrics import PROTOCOLS, format_summary, resolve_protocols
    from custom.scoring import evaluate_case, evaluate_datalist, write_json

    # fire gives "--range 0 255" as range=0 plus an extra positional 255
    if extra:
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (range, *extra))
        if len(extra) != 1 or not numbers:
            raise InputError(
                f"evaluate: unexpected argument(s) {' '.join(map(str, extra))} (use flags: --pred, --ct, --mask, ...)"
            )
        range = (range, extra[0])
    if protocol != "all" and protocol not in PROTOCOLS:
        raise InputError(f"--protocol: unknown protocol {protocol!r}, expected one of {sorted(PROTOCOLS)} or 'all'")
    names = resolve_protocols(protocol)
    value_range = parse_range(range)
    if datalist is not None:
        if pred is not None or ct is not None:
            raise InputError("evaluate: give either --pred/--ct/--mask or --datalist/--pred-dir, not both")
        if pred_dir is None:
            raise InputError(f"{datalist}: --pred-dir (folder of the predictions) is required with --datalist")
        _, summary = evaluate_datalist(
            datalist,
            pred_dir,
            out_dir,
            protocols=names,
            value_range=value_range,
            split=None if split is None else str(split),
            region_mask_key=None if region_mask is None else str(region_mask),
            bone_threshold=float(bone_threshold),
        )
        out = out_dir if out_dir is not None else pred_dir
        print(f"{summary['n']} cases of '{summary['split']}' scored ({', '.join(names)})")
        print(format_summary(summary["metrics"]))
        print(f"wrote {out}/metrics.csv and {out}/summary.json")
        return 0
    if pred is None or ct is None:
        raise InputError(
            "evaluate: give --pred SCT --ct CT [--mask MASK] for one case, or --datalist FILE --pred-dir DIR"
        )
    if json is not None:
        check_output_path(str(json), [pred, ct, mask, region_mask], "--json file")
    metrics = evaluate_case(
        str(pred),
        str(ct),
        None if mask is None else str(mask),
        protocols=names,
        value_range=value_range,
        region_mask_path=None if region_mask is None else str(region_mask),
        bone_threshold=float(bone_threshold),
    )
    for key, value in metrics.items():
        print(f"{key}: {value:.6f}")
    if json is not None:
        write_json(metrics, str(json))
        print(f"wrote {json}")
    return 0


def _input_and_output(
    paths: Sequence[str], input: str | None, output: str | None, datalist: str | None
) -> tuple[str | None, str]:
    """``infer``'s input and output from its positional words (``INPUT OUTPUT``, or ``OUTPUT`` alone with ``--input``
    or ``--datalist``) and its flags; a word given twice, or missing, is one clear error."""
    usage = "usage: infer BUNDLE INPUT OUTPUT, or infer BUNDLE OUTPUT --datalist F, or flags --input/--output"
    words = [str(p) for p in paths]
    if len(words) > 2 or (datalist and len(words) > 1):
        raise InputError(f"infer: too many paths {' '.join(words)} ({usage})")
    if len(words) == 2:
        if input is not None:
            raise InputError(f"infer: the input is given twice ({words[0]} and --input {input}; {usage})")
        input, words = words[0], words[1:]
    if words:
        if output is not None and input is None and not datalist:
            input = words[0]
        elif output is not None:
            raise InputError(f"infer: the output is given twice ({words[0]} and --output {output}; {usage})")
        else:
            output = words[0]
    if output is None:
        raise InputError(f"infer: no output folder ({usage})")
    if not str(output).strip():
        raise InputError(f"--output: empty; give the output folder ({usage})")
    if input is None and not datalist:
        raise InputError(f"infer: give an input (an MR image or folder) or --datalist ({usage})")
    if input is not None and not os.path.exists(input):
        swapped = f"; did you mean infer BUNDLE {output} {input}?" if os.path.exists(output) else ""
        raise InputError(f"{input}: file or folder not found ({usage}{swapped})")
    return input, str(output)


def infer(
    bundle: str,
    *paths: str,
    input: str | None = None,
    output: str | None = None,
    mask: str | None = None,
    ckpt: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    datalist: str | None = None,
    split: str | None = None,
    config: Any = None,
    **overrides: Any,
):
    """Synthesize CT with a bundle: ``infer BUNDLE INPUT OUTPUT`` for one MR image or a folder of them, or ``infer
    BUNDLE OUTPUT --datalist F`` for a datalist split. Writes ``<case>_sct.nii.gz`` (``.png`` for 8-bit slices).

    The model's own record (``model.json`` beside ``model.pt``, written by training) gives the network and the
    intensity settings, so no config is needed; ``--config`` files (several: ``--config a.json,b.json``) and any
    ``--key value`` of the bundle's inference config are merged on top, as with ``python -m monai.bundle run``.

    Args:
        bundle: bundle folder, e.g. bundles/pix2pix_ngf.
        paths: INPUT then OUTPUT (or OUTPUT alone, with --input or --datalist).
        input: MR image (NIfTI, MHA, PNG, a DICOM series folder), a SynthRAD-style folder (<ID>/mr.nii.gz [+
            mask.nii.gz]) or a folder of images.
        output: output folder (created); never the place of an input file.
        mask: body mask of a single input image; the sCT is set to air outside it.
        ckpt: model weights (default <bundle>/models/model.pt), with its model.json beside it; several
            (``a.pt,b.pt``) or a folder (every model.pt under it, e.g. what ``train-ensemble`` wrote) make an ensemble,
            combined voxel-wise (``--combine bone_vote``, ``bone_half``, ``mean`` or ``median``; the default is the
            bundle's, e.g. cyclegan_cc ``bone_vote``, pix2pix_ngf and swin_pix2pix_3d ``bone_half``). With
            ``--tta flip`` (swin_pix2pix_3d's default) each member also sees the input flipped left-right
            (``--tta_axes "[0,1]"``: more flips), with ``--tta shift`` shifted by ``--tta_shift`` voxels (8; padded
            and cropped back, so no voxel is lost) along every combination of the network's axes, with ``--tta
            flip_shift`` both (8 passes per member on slices), each inverted before combining.
            ``--uncertainty`` also writes ``<case>_sct_std.nii.gz``: the per-voxel standard deviation over members x
            augmentations in the CT's units (float32, 0 outside the mask).
        device: e.g. cpu, cuda or cuda:1 (default: a GPU when there is one).
        precision: fp32 (default), bf16 (about half the time on CPUs with AVX512-BF16/AMX and on recent GPUs; its
            cost in HU is in each bundle's docs) or fp16 (GPUs only).
        datalist: a datalist JSON: infer its split instead of --input.
        split: the datalist's list to infer (default test, or validation when test is empty).
        config: extra config file(s) merged over inference.json, e.g. configs/evaluate.json (also scores the sCTs).
        overrides: any other id of the bundle's inference config, e.g. --patch_size "[192,192]", --sw_batch_size 4,
            --background_io true, --channels_last false.
    """
    from custom.config_keys import check_override_values
    from custom.inference import member_paths, run_bundle_inference

    input, output = _input_and_output(paths, input, output, datalist)
    if input is not None:
        overrides.update(dataset_dir=str(input), mask_file=None if mask is None else str(mask))
    elif mask is not None:
        raise InputError(f"{mask}: --mask goes with --input (a single MR image), not with --datalist")
    for key, value in (("precision", precision), ("datalist", datalist), ("split", split)):
        if value is not None:
            overrides[key] = value
    if device is not None:
        check_override_values({}, {"device": device}, where="infer")
        overrides["device"] = f"$torch.device({str(device)!r})"
    if ckpt is not None:
        ckpt, *others = member_paths(ckpt if isinstance(ckpt, str) else [str(c) for c in ckpt])
        if others:  # a tuple: one opaque value to MONAI's parser, so a file name is never read as an expression
            overrides["ensemble_ckpts"] = tuple(others)
    written = run_bundle_inference(bundle, _text_list(config) or (), ckpt=ckpt, output_dir=output, **overrides)
    for path in written:
        print(path)
    return 0


# command -> the function, or "module:function" of a library function whose result is printed
COMMANDS: dict[str, Callable | str] = {
    "demo-data": "custom.demo.heads:make_demo_data",
    "demo-lung-data": "custom.demo.lungs:make_lung_demo_data",
    "datalist": "custom.tools.layouts:make_datalist",
    "dicom2nifti": "custom.data.dicom:dicom_to_nifti",
    "stack-slices": "custom.tools.stack_slices:stack_slices",
    "unstack-slices": "custom.tools.stack_slices:unstack_slices",
    "check": check,
    "evaluate": evaluate,
    "infer": infer,
    "train-ensemble": "custom.tools.ensemble_training:train_ensemble",
    "dose-eval": "custom.dose.evaluate:dose_eval",
}


def _clear_errors(func: Callable, debug: bool = False) -> Callable:
    """``func`` as a command: its return value is the exit code; a user's error is one line and exit code 2 (with
    ``debug``, or ``SCT_DEBUG=1``, its traceback); Ctrl-C and SIGTERM one line and exit code 130 or 143."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        quiet = not (debug or debug_requested())
        try:
            with user_errors_logged_in_one_line() if quiet else nullcontext():
                code = func(*args, **kwargs)
        except KeyboardInterrupt as e:
            if not quiet:
                raise
            exit_now(interrupted(e))
        except Exception as e:
            message = user_error(e) if quiet else None
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)
        # the interpreter's last garbage collection would walk every object of torch's and MONAI's ~4,000 modules:
        # 0.6 s at exit, a sixth of a bf16 volume; frozen objects are skipped (and freed as usual)
        gc.freeze()
        sys.exit(code)

    return wrapper


class _ProgressLines(logging.Handler):
    """Plain lines on whatever ``sys.stderr`` is when a record comes (not the stream of when it was made), as
    logging's own last resort does for warnings; nothing once logging is configured (e.g. by a bundle run inside the
    command), whose handlers show the record."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            print(self.format(record), file=sys.stderr, flush=True)


def _progress_lines_to_stderr() -> None:
    """The library's progress lines (``logger.info`` under ``custom``, e.g. a case done) as plain lines on stderr,
    beside the command's results on stdout; once per process."""
    log = logging.getLogger("custom")
    if not any(isinstance(h, _ProgressLines) for h in log.handlers):
        handler = _ProgressLines(logging.INFO)
        handler.addFilter(lambda record: record.levelno < logging.WARNING)  # warnings keep their usual way out
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> None:
    """Run one command; exits with its code (0 success, 1 check found problems, 2 bad input)."""
    import fire

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # a user's error shows its traceback too
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"error: unknown command {argv[0]!r}", file=sys.stderr)
        print(__doc__.strip().split("\n\n")[0] + "\n\nCommands:\n" + "\n".join(f"  {c}" for c in COMMANDS))
        sys.exit(0 if not argv or argv[0] in ("-h", "--help") else 2)
    command = COMMANDS[argv[0]]
    command = _printed(command) if isinstance(command, str) else command
    _progress_lines_to_stderr()
    stop_on_signals()  # Ctrl-C and SIGTERM: one line, no partial output
    fire.Fire(_clear_errors(command, debug), command=argv[1:], name=f"python -m custom {argv[0]}")
