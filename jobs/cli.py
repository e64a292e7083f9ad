"""The ``lakelabel`` command: ``demo``, ``run`` (the pipeline), each stage on its own, ``package``.

Each job module declares its command (:class:`jobs.runtime.command.Command`); this module only
collects them under one parser. ``spark-submit jobs/cli.py run --config ...`` and the console
script ``lakelabel`` are the same program. Exit codes: :mod:`jobs.runtime.command`.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobs.runtime.command import Command, build_parser, main_many


def _package_options(p) -> None:
    p.add_argument("--out", default="dist", help="output folder (default dist)")


def _package(args) -> int:
    from jobs.runtime.package import build_zip

    print(build_zip(args.out))
    return 0


PACKAGE = Command(
    name="package", help="zip lakelabel's code for spark-submit --py-files (Spark imports .zip files, not .whl)",
    add_arguments=_package_options, plain=_package,
)


def commands() -> list[Command]:
    """Every ``lakelabel`` subcommand, in the order ``--help`` lists them."""
    from jobs import aggregate, analyze, apply_lfs, demo, fit_label_model, pipeline, report, write_labels
    from jobs.people import commands as people

    return [pipeline.COMMAND, apply_lfs.COMMAND, aggregate.COMMAND, fit_label_model.COMMAND, write_labels.COMMAND,
            analyze.COMMAND, report.COMMAND, *people.COMMANDS, demo.COMMAND, PACKAGE]


def parser():
    """The ``lakelabel`` argument parser (orchestration tests parse task arguments with it)."""
    return build_parser(commands())


def main(argv: Sequence[str] | None = None) -> int:
    return main_many(commands(), argv)


def entry() -> None:
    """The ``lakelabel`` console script and Databricks wheel-task entry point: exit with main()'s code.

    A wheel task calls the entry point and ignores its return value, so the exit code must be
    raised for a failed run to fail the task.
    """
    raise SystemExit(main())


if __name__ == "__main__":
    raise SystemExit(main())
