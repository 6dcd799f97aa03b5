"""The ``robot-brain`` command line: one module per verb (see :data:`COMMANDS`).

Each verb is a module here with ``NAME``, ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)``
and ``run(args) -> int``; adding a verb means adding its module to :data:`COMMANDS`.
User errors print one line and exit with code 2 (see :mod:`robot_brain.cli._common`); a video
that cannot be rendered as asked prints one line and exits with code 1.

Before a verb runs, :func:`robot_brain.render.gl.prepare_gl` chooses MuJoCo's OpenGL backend: a
verb that writes no video loads no OpenGL at all; one that does gets a backend that works here,
or the software renderer.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from robot_brain import __version__
from robot_brain.render import RenderError

from ._common import EXIT_FAILURE, EXIT_USAGE, CliError, CliParser, check_shield

__all__ = ["COMMANDS", "build_parser", "main"]

# Subcommand modules of this package, in the order ``--help`` lists them (module names: the verb
# is the module's NAME, e.g. module ``train_critic`` -> verb ``train-critic``).
COMMANDS: tuple[str, ...] = ("tasks", "sim", "demo", "train", "eval", "plot", "train_critic",
                             "compare", "bench", "sim_robot", "deploy", "replay", "sim_servos",
                             "calibrate", "report", "sweep", "tune")

PROG = "robot-brain"


def build_parser() -> CliParser:
    """The full parser (cheap: subcommand modules import their heavy dependencies in ``run``)."""
    parser = CliParser(
        prog=PROG,
        description="A two-rate control stack for robot arms: slow policies, a fast reflex and "
                    "variable-impedance control, in MuJoCo and on real arms.",
        epilog="Run 'robot-brain COMMAND --help' for the options and an example of each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (0 ok, 1 failure, 2 usage)."""
    parser = build_parser()
    try:
        from ._ros import strip_ros_args

        args = parser.parse_args(strip_ros_args(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help, --version, usage errors (already printed, one line)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if args.command is None:
        verbs = ", ".join(c.replace("_", "-") for c in COMMANDS)  # module name -> verb
        print(f"{PROG}: error: choose a command: {verbs} (try '{PROG} --help')",
              file=sys.stderr)
        return EXIT_USAGE
    from robot_brain.render.gl import prepare_gl

    prepare_gl(renders=bool(getattr(args, "video", None)))  # before anything imports mujoco
    try:
        check_shield(args)
        return int(args._run(args) or 0)
    except CliError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except RenderError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
