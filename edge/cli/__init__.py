"""``edgerec``: the command line.

One module per command group, each with a ``register(subparsers)`` function: the facade's
commands (:mod:`edge.cli.household`: each calls the :class:`~edge.recommender.Recommender`
method of the same name with options named after its arguments), ``bundle``, ``features``,
``bench``, ``package`` and ``serve``. Server commands (``demo``, ``demo-data``, ``eval``,
``export``...) are registered the same way by the ``export`` package through the
``edgerec.commands`` entry point, so this package never imports the server side.

``--profile`` is always a household profile; the hardware is ``--device-profile``.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from importlib.metadata import entry_points
from typing import Sequence

from edge.errors import EdgeError

#: Modules with a ``register(subparsers)`` function for device-side command groups, in the
#: order ``edgerec --help`` lists them.
DEVICE_COMMAND_MODULES: tuple[str, ...] = (
    "edge.cli.household", "edge.cli.bundle", "edge.cli.features", "edge.cli.serve", "edge.cli.bench", "edge.cli.package",
)
#: Entry-point group through which other packages (``export``) add their commands.
COMMANDS_GROUP = "edgerec.commands"


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with server commands added when the export package provides them."""
    from edge import __version__

    parser = argparse.ArgumentParser(prog="edgerec", description="On-device recommendations for TVs and speakers, offline.")
    parser.add_argument("--version", action="version", version=f"edgerec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in DEVICE_COMMAND_MODULES:
        import_module(name).register(sub)
    for ep in entry_points(group=COMMANDS_GROUP):
        ep.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgerec`` console script: a library error (``EdgeError``) becomes
    one line on stderr and exit status 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgeError as exc:
        print(f"edgerec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
