"""The `neurolesion` command.

Each sub-command is a thin adapter over the Python API of one stage. Errors the user can fix
(`InputError`) print one line and exit with code 2; anything else exits with code 1.
Library code logs; only this module writes to the terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from neurolesion.errors import InputError

app = typer.Typer(
    name="neurolesion",
    help="Segment and quantify brain lesions on MRI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("neurolesion")


def guarded(func: F) -> F:
    """Run a command, mapping InputError to exit code 2 and other failures to exit code 1 (one line)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            log.debug("internal error", exc_info=True)
            typer.secho(f"internal error: {type(exc).__name__}: {exc}", err=True, fg=typer.colors.RED)
            typer.secho("run with --verbose for the traceback", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details (and tracebacks).")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
@guarded
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Versions, models, CPU threads and CUDA availability."""
    import json

    from neurolesion.sysinfo import system_info

    data = system_info()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for section, values in data.items():
        typer.secho(section, bold=True)
        if isinstance(values, dict):
            for k, v in values.items():
                typer.echo(f"  {k:<28} {v}")
        elif isinstance(values, list):
            for v in values:
                typer.echo(f"  {v}")
        else:
            typer.echo(f"  {values}")


@app.command()
@guarded
def convert(
    input: Annotated[Path, typer.Argument(help="DICOM folder, BIDS subject/session folder or NIfTI file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
) -> None:
    """DICOM or BIDS to one NIfTI per detected sequence plus `detected.json`."""
    from neurolesion.io.case import convert_case

    written = convert_case(input, output)
    for p in written:
        typer.echo(str(p))


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
