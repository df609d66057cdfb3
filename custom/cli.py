"""Command line: ``python -m custom <command> [--flags]`` (built with fire; ``--help`` on any command).

Commands: ``demo-data``, ``demo-lung-data``, ``datalist``, ``dicom2nifti``, ``check``, ``evaluate``, ``infer``.
Bad input stops with one line naming the file and the problem (exit code 2), never a traceback (``--debug`` or
``SCT_DEBUG=1`` shows it).

This is the only module that parses arguments or prints: the library functions it calls return results and raise
:class:`custom.io.InputError`. Heavy imports happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import errno
import functools
import importlib
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from custom.io import InputError, Terminated, check_output_path, remove_empty_folders, stop_on_signals

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
        print(func(*args, **kwargs))
        return 0

    return command


def check(datalist: str, eight_bit: bool | None = None, allow_overlap: bool = False):
    """Check every case of a datalist; print a table of every problem. Exit code 0 if none, 1 otherwise. For 8-bit
    data it also warns of subjects whose CTs were windowed differently (the exit code does not change).

    Args:
        datalist: datalist JSON.
        eight_bit: 8-bit 2D PNG slices (default: the datalist's own eight_bit flag).
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
        ckpt: model weights (default <bundle>/models/model.pt), with its model.json beside it.
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
    from custom.inference import run_bundle_inference

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
    written = run_bundle_inference(bundle, _text_list(config) or (), ckpt=ckpt, output_dir=output, **overrides)
    for path in written:
        print(path)
    return 0


# command -> the function, or "module:function" of a library function whose result is printed
COMMANDS: dict[str, Callable | str] = {
    "demo-data": "custom.data.demo:make_demo_data",
    "demo-lung-data": "custom.data.demo_lung:make_lung_demo_data",
    "datalist": "custom.data.layouts:make_datalist",
    "dicom2nifti": "custom.data.dicom:dicom_to_nifti",
    "check": check,
    "evaluate": evaluate,
    "infer": infer,
}


DEBUG_ENV = "SCT_DEBUG"  # SCT_DEBUG=1: a user's mistake shows its full traceback too (as --debug does)


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions behind it (``raise ... from``, or raised while handling), outermost first."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def user_error(error: BaseException) -> str | None:
    """The one-line message of an error that is the user's to fix, or ``None`` for a bug (shown as a traceback).

    An :class:`InputError` anywhere behind ``error`` (MONAI wraps errors of config expressions and transforms in
    ``RuntimeError``), or quoted in a ``RuntimeError``'s text, gives its own message; otherwise an ``OSError`` naming
    a file (permission denied, disk full, no such file...) gives ``file: reason``.
    """
    chain = list(_chain(error))
    for e in chain:
        if isinstance(e, InputError):
            return str(e)
        if isinstance(e, KeyboardInterrupt):
            return "interrupted"
    for e in chain:  # MONAI's SaveImage keeps its writer's error only as text, in a RuntimeError of its own
        quoted = _QUOTED_ERROR.findall(str(e)) if isinstance(e, RuntimeError) else []
        if quoted:
            return quoted[-1]
    for e in chain:
        if isinstance(e, OSError) and (e.filename or e.errno == errno.ENOSPC):
            reason = "disk full" if e.errno == errno.ENOSPC else e.strerror or str(e)
            return f"{e.filename or 'output'}: {reason}"
    return None


_QUOTED_ERROR = re.compile(r"^custom\.io\.(?:Input|Output)Error: (.+)$", re.MULTILINE)


@contextmanager
def _log_user_errors_without_traceback() -> Iterator[None]:
    """Log records of a user's error keep their message but lose their traceback: the engines log an exception with
    its traceback (ignite, MONAI's ``StatsHandler``) before it reaches the command, which then says it in one line."""
    factory = logging.getLogRecordFactory()

    def record(*args, **kwargs) -> logging.LogRecord:
        made = factory(*args, **kwargs)
        if made.exc_info and made.exc_info[1] is not None and user_error(made.exc_info[1]) is not None:
            made.exc_info = None
        return made

    logging.setLogRecordFactory(record)
    try:
        yield
    finally:
        logging.setLogRecordFactory(factory)


def _finish_background_writes() -> None:
    """Let the background writes in progress finish (atomically) before the process ends without joining threads."""
    writes = sys.modules.get("custom.handlers.background_writes")
    if writes is not None:
        try:
            writes.wait_for_background_writes()
        except Exception:  # noqa: BLE001 - the run is ending with its own error; a failed write left no file
            pass


def _interrupted(error: KeyboardInterrupt) -> int:
    """Say that a run was stopped (Ctrl-C or SIGTERM) in one line, once the background writes in progress have
    finished; the exit code, 130 or 143 as a shell gives for those signals."""
    _finish_background_writes()
    terminated = isinstance(error, Terminated)
    print(
        f"error: interrupted ({'SIGTERM' if terminated else 'Ctrl-C'}): finished outputs are kept, unfinished ones "
        "were removed",
        file=sys.stderr,
    )
    return 143 if terminated else 130


def _exit_now(code: int) -> None:
    """End the process with ``code`` once logs and output are flushed. Not ``sys.exit``: after a Ctrl-C that passed
    through an ``eval`` of a string (MONAI runs a config's ``$`` expressions so, e.g. ``"$@evaluator.run()"``), CPython
    ends the process by SIGINT whatever exit code was asked for."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _clear_errors(func: Callable, debug: bool = False) -> Callable:
    """``func`` as a command: its return value is the exit code; a user's error is one line and exit code 2 (with
    ``debug``, or ``SCT_DEBUG=1``, its traceback); Ctrl-C and SIGTERM one line and exit code 130 or 143."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        quiet = not (debug or _debug())
        try:
            with _log_user_errors_without_traceback() if quiet else nullcontext():
                code = func(*args, **kwargs)
        except KeyboardInterrupt as e:
            if not quiet:
                raise
            _exit_now(_interrupted(e))
        except Exception as e:
            message = user_error(e) if quiet else None
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)
        sys.exit(code)

    return wrapper


# the folders this `python -m monai.bundle run` made for each of its outputs (models/, runs/, the output folder),
# deepest first: removed again when the run fails before writing anything there but TensorBoard's event files
_MADE_FOLDERS: list[list[Path]] = []
_LOG_FILES = "events.out.tfevents."


def _remove_unused_folders() -> None:
    for made in _MADE_FOLDERS:
        folder = made[0]
        if folder.is_dir() and all(p.is_dir() or p.name.startswith(_LOG_FILES) for p in folder.rglob("*")):
            shutil.rmtree(folder, ignore_errors=True)
            remove_empty_folders(made[1:])


def _exit_on_user_error(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
    """``sys.excepthook`` under ``python -m monai.bundle run``: a user's error is one line and exit code 2, Ctrl-C and
    SIGTERM one line and 130 or 143; any failure removes the folders the run made and left without results."""
    _remove_unused_folders()
    if isinstance(error, KeyboardInterrupt) and not _debug():
        code = _interrupted(error)
    else:
        message = None if _debug() else user_error(error)
        if message is None:
            sys.__excepthook__(kind, error, traceback)
            return
        print(f"error: {message}", file=sys.stderr)
        _finish_background_writes()
        code = 2
    _exit_now(code)  # the interpreter is already ending with an uncaught exception; this only sets the exit code


# options of `python -m monai.bundle run` that are not config ids
MONAI_RUN_OPTIONS = frozenset(
    {"config_file", "meta_file", "logging_file", "args_file", "init_id", "run_id", "final_id", "tracking",
     "workflow_type", "workflow_name", "properties_path"}
)  # fmt: skip


def _long_options(args: Sequence[str]) -> dict[str, Any]:
    """``--key value`` and ``--key=value`` pairs of a command line, in order, with values read as fire reads them
    (``0`` an int, ``abc`` a string, ``[1,2]`` a list; a flag without a value is True)."""
    from fire.parser import DefaultParseValue

    options: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if token.startswith("--") and len(token) > 2:
            name, equals, value = token[2:].partition("=")
            if not equals and i + 1 < len(args) and not args[i + 1].startswith("--"):
                value, i = args[i + 1], i + 1
            elif not equals:
                value = None
            # fire reads --config-file as config_file
            options[name.replace("-", "_")] = True if value is None else DefaultParseValue(value)
        i += 1
    return options


def check_monai_bundle_arguments(outputs: Sequence[str | os.PathLike] = ()) -> None:
    """Called first in our configs' ``initialize``: under ``python -m monai.bundle run ...``, a ``--key value`` that
    names no key of the config stops the run with one line suggesting the close match and exit code 2 (``--epoch 1``
    would otherwise train the default number of epochs), and so does a value that the setting cannot take
    (``--epochs 0``, ``--precision bf17``: :func:`custom.config_keys.check_override_values`), before any work. Anywhere
    else (tests, MONAI Label, ``custom infer``, which checks its own overrides) it does nothing.

    It also makes every error that is the user's to fix (:func:`user_error`: bad data, checkpoint or output) end the
    run with one line and exit code 2 instead of a traceback (``SCT_DEBUG=1`` shows the traceback), Ctrl-C and SIGTERM
    one line and exit code 130 or 143; and a failed run removes those of ``outputs`` (the config's ``ckpt_dir``,
    ``output_dir``) that it made and left without results (nothing but TensorBoard's event files)."""
    import ast

    from custom.config_keys import check_override_values, check_overrides

    if not sys.argv or not sys.argv[0].replace("\\", "/").endswith("monai/bundle/__main__.py"):
        return
    try:
        options = _long_options(sys.argv[1:])
        from monai.bundle import ConfigParser

        if options.get("args_file"):
            options.update(ConfigParser.load_config_file(str(options["args_file"])))
        files: Any = options.get("config_file") or ""
        try:
            files = ast.literal_eval(files) if isinstance(files, str) else files
        except (ValueError, SyntaxError):
            pass
        config = ConfigParser.load_config_files(files)
        overrides = {k: v for k, v in options.items() if k not in MONAI_RUN_OPTIONS}
        check_overrides(config, list(overrides), where=f"the config {files}")
        check_override_values(config, overrides, where=f"the config {files}")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    for output in outputs:
        folder = Path(output).absolute()
        made = [f for f in (folder, *folder.parents) if not f.exists()]
        if made:
            _MADE_FOLDERS.append(made)
    sys.excepthook = _exit_on_user_error
    stop_on_signals()
    if not _debug():
        _log_user_errors_without_traceback().__enter__()  # for the whole run (this process ends with it)


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
    stop_on_signals()  # Ctrl-C and SIGTERM: one line, no partial output
    fire.Fire(_clear_errors(command, debug), command=argv[1:], name=f"python -m custom {argv[0]}")
