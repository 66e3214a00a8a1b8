"""Pieces every CLI module shares: the console, error display, common options."""

from __future__ import annotations

import functools
import shlex
import sys
from pathlib import Path

import click
from rich.console import Console

from ..errors import FlashDDError

console = Console()


def friendly_errors(fn=None, *, resumable: bool = False):
    """Show FlashDDError as a one-line CLI error instead of a traceback, and Ctrl-C as one line
    naming the command that resumes (`resumable`) or reruns the interrupted work. Every folder is
    written atomically, so an interruption leaves no half-written one behind."""
    if fn is None:
        return functools.partial(friendly_errors, resumable=resumable)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FlashDDError as e:
            raise click.ClickException(str(e)) from e
        except KeyboardInterrupt:
            command = shlex.join(["flashdd-zoo", *sys.argv[1:]])
            then = "resume where it stopped" if resumable else "start it again"
            click.echo(f"Interrupted; no half-written folder was kept. Run `{command}` to {then}.", err=True)
            sys.exit(130)

    return wrapper


data_root_option = click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FLASHDD_DATA_ROOT",
    help="Folder holding the datasets (default: $FLASHDD_DATA_ROOT, else ../shared/data).",
)

holdout_option = click.option(
    "--holdout-per-class", type=int, default=None,
    help="Training images per class held out of training, fine-tunes and RDED's pool; accuracy-reading "
         "choices (capacity selection) use them instead of the test split.")


def soft_label_options(preset_default: bool):
    """--loss and --temperature of student training; with `preset_default` they default to None (the
    build preset's values), else to RDED's (KL at T = 20)."""
    from ..zoo.evaluate import SOFT_LABEL_LOSSES, EvalProtocol

    keep = " Default: the preset's." if preset_default else ""
    loss = click.option("--loss", type=click.Choice(SOFT_LABEL_LOSSES), show_default=not preset_default,
                        default=None if preset_default else EvalProtocol.loss,
                        help="Student loss on the soft labels: kl: KL at temperature T (RDED); mse_ce: MSE + "
                             f"{EvalProtocol.ce_weight:g} CE (Flash-DD)." + keep)
    temperature = click.option("--temperature", type=float, show_default=not preset_default,
                               default=None if preset_default else EvalProtocol.temperature,
                               help="Soft-label temperature T (RDED: 20 with CutMix)." + keep)
    return lambda fn: loss(temperature(fn))


def number_list(text: str | None, convert: type, option: str) -> tuple | None:
    """'1,2,3' -> (1, 2, 3) with `convert` applied to each item; None stays None, '' is ()."""
    if text is None:
        return None
    try:
        return tuple(convert(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated {convert.__name__} values, got {text!r}.",
                                 param_hint=option) from None
