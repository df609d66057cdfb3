"""What a run needs to end the way this package promises, under ``python -m custom`` and ``python -m monai.bundle run``.

- A user's error (:func:`custom.errors.user_error`: bad data, checkpoint, output or option) ends the run with one
  ``error:`` line and exit code 2, not a traceback (``SCT_DEBUG=1`` shows it); the engines' log records of it lose
  their traceback too.
- Ctrl-C and SIGTERM end it with one line and exit code 130 or 143; outputs written atomically are whole or absent.
- A failed run removes the output folders it made and left without results.

The command line (:mod:`custom.cli`) wraps its commands in these. Under ``python -m monai.bundle run`` the bundles'
configs call :func:`start` first in ``initialize`` and :func:`end` in ``finalize``: ``start`` checks the command line's
overrides (names and values, before any work) and installs the behaviour above for the run, ``end`` removes it again,
so nothing outlives the run in a process that goes on (anywhere but ``monai.bundle run``, ``start`` does nothing).
This module and :mod:`custom.cli` are the only ones that print.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from custom.errors import InputError, Terminated, stop_on_signals, user_error
from custom.outputs import remove_empty_folders

__all__ = [
    "DEBUG_ENV",
    "debug_requested",
    "end",
    "exit_now",
    "finish_background_writes",
    "interrupted",
    "start",
    "user_errors_logged_in_one_line",
]


DEBUG_ENV = "SCT_DEBUG"  # SCT_DEBUG=1: a user's mistake shows its full traceback too (as --debug does)


def debug_requested() -> bool:
    """``SCT_DEBUG=1``: show the traceback of a user's error too."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextmanager
def user_errors_logged_in_one_line() -> Iterator[None]:
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


def finish_background_writes() -> None:
    """Let the background writes in progress finish (atomically) when a run stops with an error: the sCTs of the cases
    done are kept whole, before the process ends (without joining threads) or the caller goes on."""
    writes = sys.modules.get("custom.handlers.background_writes")
    if writes is not None:
        try:
            writes.wait_for_background_writes()
        except Exception:  # noqa: BLE001 - the run is ending with its own error; a failed write left no file
            pass


def interrupted(error: KeyboardInterrupt) -> int:
    """Say that a run was stopped (Ctrl-C or SIGTERM) in one line, once the background writes in progress have
    finished; the exit code, 130 or 143 as a shell gives for those signals."""
    finish_background_writes()
    terminated = isinstance(error, Terminated)
    print(
        f"error: interrupted ({'SIGTERM' if terminated else 'Ctrl-C'}): finished outputs are kept, unfinished ones "
        "were removed",
        file=sys.stderr,
    )
    return 143 if terminated else 130


def exit_now(code: int) -> None:
    """End the process with ``code`` once logs and output are flushed. Not ``sys.exit``: after a Ctrl-C that passed
    through an ``eval`` of a string (MONAI runs a config's ``$`` expressions so, e.g. ``"$@evaluator.run()"``), CPython
    ends the process by SIGINT whatever exit code was asked for."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# the folders this `python -m monai.bundle run` made for each of its outputs (models/, runs/, the output folder),
# deepest first: removed again when the run fails before writing anything there but TensorBoard's event files
_MADE_FOLDERS: list[list[Path]] = []
_LOG_FILES = "events.out.tfevents."
_REPLACED: dict[str, Any] = {}  # what start() replaced for the run, for end() to put back


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
    if isinstance(error, KeyboardInterrupt) and not debug_requested():
        code = interrupted(error)
    else:
        message = None if debug_requested() else user_error(error)
        if message is None:
            sys.__excepthook__(kind, error, traceback)
            return
        print(f"error: {message}", file=sys.stderr)
        finish_background_writes()
        code = 2
    exit_now(code)  # the interpreter is already ending with an uncaught exception; this only sets the exit code


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


def start(outputs: Sequence[str | os.PathLike] = ()) -> None:
    """Called first in our configs' ``initialize``: under ``python -m monai.bundle run ...``, a ``--key value`` that
    names no key of the config stops the run with one line suggesting the close match and exit code 2 (``--epoch 1``
    would otherwise train the default number of epochs), and so does a value that the setting cannot take
    (``--epochs 0``, ``--precision bf17``: :func:`custom.config_keys.check_override_values`), or ``None`` (``--minutes
    None``: MONAI's runner drops it and keeps the configured value), before any work. Anywhere
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
        # MONAI's runner drops a None given on its command line (update_kwargs ignores None): --minutes None would
        # silently keep the configured budget
        dropped = [k for k, v in options.items() if v is None and k not in MONAI_RUN_OPTIONS]
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
        if dropped:
            key = dropped[0]
            raise InputError(
                f"--{key} None: python -m monai.bundle run ignores None on its command line, so {key} would keep "
                f'its configured value; put "{key}": null in a JSON file listed last in --config_file instead'
            )
        check_override_values(config, overrides, where=f"the config {files}")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    for output in outputs:
        folder = Path(output).absolute()
        made = [f for f in (folder, *folder.parents) if not f.exists()]
        if made:
            _MADE_FOLDERS.append(made)
    _REPLACED.update(
        excepthook=sys.excepthook, sigint=signal.getsignal(signal.SIGINT), sigterm=signal.getsignal(signal.SIGTERM)
    )
    sys.excepthook = _exit_on_user_error
    stop_on_signals()
    if not debug_requested():
        _REPLACED["logging"] = user_errors_logged_in_one_line()
        _REPLACED["logging"].__enter__()


def end() -> None:
    """Called in our configs' ``finalize``: put back what :func:`start` installed (nothing, when it installed
    nothing), so that a process that goes on after the run (a test, a notebook) is as it was."""
    if not _REPLACED:
        return
    sys.excepthook = _REPLACED.pop("excepthook")
    signal.signal(signal.SIGINT, _REPLACED.pop("sigint"))
    signal.signal(signal.SIGTERM, _REPLACED.pop("sigterm"))
    if "logging" in _REPLACED:
        _REPLACED.pop("logging").__exit__(None, None, None)
    _MADE_FOLDERS.clear()
