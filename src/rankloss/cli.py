"""The ``rankloss`` command line.

Each part of rankloss adds its own sub-command from a module that defines
``add_parser(subparsers)``; the module sets ``func`` on its parser, which receives the parsed
arguments and returns an exit code. Bad input is refused before any work with exit code 2 and
one line on stderr that names the option and the values it takes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["main", "build_parser"]

#: Modules that contribute sub-commands, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "rankloss.bench.cli",
    "rankloss.metrics.cli",
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit code 2, as argparse's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from rankloss._version import __version__

    parser = _Parser(prog="rankloss", description="Train and compare models with ranking losses.")
    parser.add_argument("--version", action="version", version=f"rankloss {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
