"""Command line: ``python -m custom <command> [--flags]`` (built with fire; ``--help`` on any command).

Commands: ``demo-data``, ``datalist``, ``dicom2nifti``, ``check``, ``evaluate``, ``infer``.
Bad input stops with one line naming the file and the problem (exit code 2), never a traceback.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Callable

from custom.io import InputError

# command -> "module:function"; imported on use so that ``--help`` stays fast.
COMMANDS = {
    "demo-data": "custom.data.demo:make_demo_data",
    "datalist": "custom.data.datalist:make_datalist",
    "dicom2nifti": "custom.data.dicom:dicom_to_nifti",
    "check": "custom.data.check:check_command",
    "evaluate": "custom.metrics.evaluate:evaluate_command",
    "infer": "custom.inference:infer_command",
}


def _load(target: str) -> Callable:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _clear_errors(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            result = func(*args, **kwargs)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        if isinstance(result, int) and not isinstance(result, bool):
            sys.exit(result)  # commands return an exit code
        return result

    return wrapper


def main(argv: list[str] | None = None) -> None:
    import fire

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"error: unknown command {argv[0]!r}", file=sys.stderr)
        print(__doc__.strip() + "\n\nCommands:\n" + "\n".join(f"  {c}" for c in COMMANDS))
        sys.exit(0 if not argv or argv[0] in ("-h", "--help") else 2)
    command = _clear_errors(_load(COMMANDS[argv[0]]))
    fire.Fire(command, command=argv[1:], name=f"python -m custom {argv[0]}")


if __name__ == "__main__":
    main()
