"""The ``lakelabel`` command: ``demo``, ``run`` (the pipeline), each stage on its own, ``package``.

Each job module declares its command (:class:`jobs.runtime.command.Command`); this module only
collects them under one parser. ``spark-submit jobs/cli.py run --config ...`` and the console
script ``lakelabel`` are the same program. Exit codes: :mod:`jobs.runtime.exits`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from jobs.runtime.command import Command, build_parser, exit_process, main_many, package_version
from jobs.runtime.exits import EXIT_INPUT
from jobs.runtime.session import pyspark_missing


def _package_options(p) -> None:
    p.add_argument("--out", default="dist", help="output folder (default dist)")


def _package(args) -> int:
    from pathlib import Path

    from jobs.runtime.package import build_zip, version
    from lf_library.errors import ConfigError

    out = Path(args.out)
    zip_name = f"lakelabel-{version()}.zip"
    blocker = next((p for p in [out, *out.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        what = "is a file" if blocker == out else f"lies under {blocker}, which is a file"
        raise ConfigError(f"--out {out} {what}; --out names the folder to write {zip_name} into (default dist): "
                          f"pass a folder path")
    if (out / zip_name).is_dir():
        raise ConfigError(f"--out {out}: {out / zip_name} is a folder; remove it or pass another --out folder")
    try:
        print(build_zip(out))
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write {zip_name} there ({err.strerror or err}); pass a writable "
                          f"folder") from None
    return 0


PACKAGE = Command(
    name="package", help="zip lakelabel's code for spark-submit --py-files (Spark imports .zip files, not .whl)",
    add_arguments=_package_options, plain=_package,
)


def commands() -> list[Command]:
    """Every ``lakelabel`` subcommand, in the order ``--help`` lists them."""
    from jobs import aggregate, analyze, apply_lfs, demo, fit_label_model, pipeline, report, train, verify, write_labels
    from jobs import diff, explain
    from jobs.people import commands as people

    return [pipeline.COMMAND, apply_lfs.COMMAND, aggregate.COMMAND, fit_label_model.COMMAND, write_labels.COMMAND,
            analyze.COMMAND, report.COMMAND, diff.COMMAND, explain.COMMAND, verify.COMMAND, train.COMMAND,
            *people.COMMANDS, demo.COMMAND, PACKAGE]


def parser():
    """The ``lakelabel`` argument parser (orchestration tests parse task arguments with it)."""
    return build_parser(commands())


def main(argv: Sequence[str] | None = None) -> int:
    # The job modules import pyspark at the top, so check for it before collecting them: without
    # it, every command but `package` stops here with the install line (exit 2).
    args = list(sys.argv[1:] if argv is None else argv)
    # As `python -m` does: a team's LF and slice modules in the folder the command runs from import by
    # name (the console script's path has only its own folder). Appended: installed packages win.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    if args == ["--version"]:  # before the job modules import pyspark: works in any environment
        print(f"lakelabel {package_version()}")
        return 0
    if not pyspark_missing_exit(args):
        return main_many(commands(), argv)
    if args[:1] == ["package"]:
        return main_many([PACKAGE], argv)
    print(f"lakelabel: error: {pyspark_missing()}", file=sys.stderr)
    return EXIT_INPUT


def pyspark_missing_exit(args: Sequence[str]) -> bool:
    """True when pyspark cannot be imported (then only ``package`` and ``--version`` work: ``--help`` lists
    commands from the job modules, which import pyspark, so it says the install line as they do)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return True
    return False


def entry() -> None:
    """The ``lakelabel`` console script and Databricks wheel-task entry point: exit with main()'s code.

    A wheel task calls the entry point and ignores its return value, so the exit code must be
    raised for a failed run to fail the task. Elsewhere the process ends with ``os._exit`` after
    Python's exit handlers (:func:`jobs.runtime.command.exit_process`): no exit code 134 from a
    native thread pool's teardown after a run that succeeded.
    """
    exit_process(main())


if __name__ == "__main__":
    exit_process(main())
