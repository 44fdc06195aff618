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


@app.command()
@guarded
def evaluate(
    pred: Annotated[Path, typer.Option("--pred", help="Predictions: NIfTI file, NIfTI or segment folders.")],
    truth: Annotated[Path, typer.Option("--truth", help="Truth: NIfTI file or folder, paired by name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    task: Annotated[
        str | None, typer.Option("--task", help="Read <task>_labels.nii.gz in segment output folders.")
    ] = None,
    hit_rule: Annotated[
        str, typer.Option("--hit-rule", help="Lesion hit rule: overlap, centroid or coverage (>= 50 %).")
    ] = "centroid",
    distance: Annotated[float, typer.Option("--distance", help="Centroid hit-rule distance (mm).")] = 5.0,
    threshold: Annotated[float, typer.Option(help="Threshold of probability-map predictions.")] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary JSON to stdout.")] = False,
) -> None:
    """Score predictions against truth: per_case.csv, summary.json and plots in OUTPUT."""
    import json

    from neurolesion.metrics.evaluate import evaluate_folders

    summary = evaluate_folders(
        pred, truth, output, task=task, rule=hit_rule, threshold=threshold, distance_mm=distance
    )
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.secho(f"{summary['n_cases']} cases, hit rule {hit_rule}", bold=True)
    for name, s in summary["metrics"].items():
        if s["mean"] is not None:
            ci = f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}]" if s["ci_low"] is not None else ""
            typer.echo(f"  {name:<20} {s['mean']:>10.3f} {ci}")
    les = summary["lesions"]
    typer.echo(f"lesions: TP {les['tp']}, FP {les['fp']}, FN {les['fn']}, F1 {les['f1']:.3f}")
    typer.echo(f"outputs in {output}")


@app.command()
@guarded
def serve(
    config: Annotated[Path | None, typer.Option("--config", help="YAML file of service settings.")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8765).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Jobs, database and token folder.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once (default 1).")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="NEUROLESION_TOKEN", help="Access token (default: generated, kept).")
    ] = None,
) -> None:
    """The web application: upload a study, review and correct lesions, export RTSTRUCT/SEG/NIfTI."""
    import uvicorn

    from neurolesion.service.app import create_app
    from neurolesion.service.settings import ensure_token, load_settings

    settings = load_settings(
        config, host=host, port=port, data_dir=data_dir, concurrency=concurrency, token=token
    )
    settings, generated = ensure_token(settings)
    if generated:
        typer.echo(f"new access token written to {settings.data_dir / 'token'}")
    typer.secho(f"open http://{settings.host}:{settings.port}/#token={settings.token}", bold=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
