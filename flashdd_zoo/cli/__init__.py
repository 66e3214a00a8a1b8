"""The `flashdd-zoo` command line, one module per command group. Thin: parse options, call the
library, print a short report."""

from __future__ import annotations

import click

from .. import __version__
from .artifact import card, export, info
from .bench import bench
from .dense import dense_cmd
from .ensemble import ensemble_cmd
from .hub import ls, publish, pull
from .projector import projector_cmd, projector_update_cmd
from .relabel import relabel_check_cmd, relabel_cmd
from .zoo import build_cmd, distill_cmd, evaluate_cmd, train_teacher_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flashdd-zoo")
def main() -> None:
    """Build, export, inspect and share compact soft-label generators for dataset distillation."""


for _command in (info, export, card, build_cmd, train_teacher_cmd, distill_cmd, evaluate_cmd, dense_cmd, ensemble_cmd,
                 projector_cmd, projector_update_cmd, relabel_cmd, relabel_check_cmd, publish, pull, ls, bench):
    main.add_command(_command)
