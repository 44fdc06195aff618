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
    model: Annotated[
        bool, typer.Option("--model", help="Parameters and GFLOPs per patch of each architecture's default.")
    ] = False,
    model_source: Annotated[
        str | None,
        typer.Option(
            "--model-source", help="Report a model (name, file, folder) or training config instead."
        ),
    ] = None,
) -> None:
    """Versions, models, CPU threads and CUDA availability."""
    import json

    from neurolesion.sysinfo import system_info

    data = system_info()
    if model or model_source:
        from neurolesion.models.complexity import describe

        data["architectures"] = describe(model_source)
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


_SEQ_HELP = "Override detection: the {} image (NIfTI file or DICOM series folder)."
_PRECISION_HELP = (
    "Network arithmetic: auto (bfloat16 where the processor has it natively, about 2x faster on such CPUs), "
    "float32 or bfloat16."
)


@app.command()
@guarded
def segment(
    input: Annotated[
        Path | None, typer.Argument(help="DICOM folder, BIDS subject/session folder, NIfTI file or folder.")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")] = Path("neurolesion-out"),
    t1: Annotated[Path | None, typer.Option("--t1", help=_SEQ_HELP.format("T1"))] = None,
    t1c: Annotated[Path | None, typer.Option("--t1c", help=_SEQ_HELP.format("contrast-enhanced T1"))] = None,
    t2: Annotated[Path | None, typer.Option("--t2", help=_SEQ_HELP.format("T2"))] = None,
    flair: Annotated[Path | None, typer.Option("--flair", help=_SEQ_HELP.format("FLAIR"))] = None,
    t2star: Annotated[Path | None, typer.Option("--t2star", help=_SEQ_HELP.format("T2*-GRE"))] = None,
    swi: Annotated[Path | None, typer.Option("--swi", help=_SEQ_HELP.format("SWI"))] = None,
    task: Annotated[
        list[str] | None,
        typer.Option("--task", help="brain, wmh, cmb, lacune, epvs, csvd, ccm, tumor or all (repeatable)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="TASK=PATH: use this trained model for TASK (repeatable)."),
    ] = None,
    brain: Annotated[
        str, typer.Option(help="Brain extraction: auto, deepbet, deepbet-t1, nonzero (stripped).")
    ] = "auto",
    bias: Annotated[bool, typer.Option(help="N4 bias-field correction.")] = True,
    register: Annotated[bool, typer.Option(help="Co-register every sequence to the reference.")] = True,
    locate: Annotated[bool, typer.Option(help="Atlas regions, lobes and sides for every lesion.")] = True,
    tta: Annotated[
        bool | None,
        typer.Option(
            "--tta/--no-tta", help="Mirror test-time augmentation (default: as each model's card says)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    precision: Annotated[str, typer.Option(help=_PRECISION_HELP)] = "auto",
) -> None:
    """Segment and quantify the lesions of one case; write the output contract into OUTPUT."""
    from neurolesion.pipeline import segment as run_segment

    given = {"t1": t1, "t1c": t1c, "t2": t2, "flair": flair, "t2star": t2star, "swi": swi}
    overrides = {k: v for k, v in given.items() if v is not None}

    def progress(stage: str, fraction: float) -> None:
        typer.secho(f"[{fraction:4.0%}] {stage}", err=True, fg=typer.colors.CYAN)

    models: dict[str, str] = {}
    for item in model or []:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise InputError(f"--model {item!r}: expected TASK=PATH, e.g. --model wmh=runs/wmh/best.pt")
        models[name.strip().lower()] = path
    result = run_segment(
        input,
        output,
        tasks=task,
        overrides=overrides,
        progress=progress,
        models=models,
        tta=tta,
        device=device,
        precision=precision,
        brain=brain,
        bias_correct=bias,
        register=register,
        locate=locate,
    )
    _print_result(result.summary, result.lesions)
    typer.echo(f"outputs in {result.output}")


def _print_result(summary: dict[str, Any], lesions: list[dict[str, Any]]) -> None:
    for name, reason in summary.get("tasks_skipped", {}).items():
        typer.secho(f"skipped {name}: {reason}", fg=typer.colors.YELLOW)
    for name, reason in summary.get("tasks_failed", {}).items():
        typer.secho(f"FAILED {name}: {reason}", fg=typer.colors.RED)
    for w in summary.get("warnings", []):
        typer.secho(f"warning: {w}", fg=typer.colors.YELLOW)
    if lesions:
        typer.echo(
            f"{'task':<7} {'id':>3} {'type':<11} {'vol ml':>8} {'diam mm':>8} {'region':<15} {'lobe':<16} conf"
        )
        for r in lesions:
            typer.echo(
                f"{r['task']:<7} {r['id']:>3} {r['type']:<11} {r['volume_ml']:>8.3f} {r['max_diameter_mm']:>8.1f} "
                f"{r.get('region', ''):<15} {r.get('lobe', ''):<16} {r.get('confidence', 0):.2f}"
            )
    for name, t in summary.get("tasks", {}).items():
        typer.echo(f"{name}: {t['count']} lesions, {t['volume_ml']:.2f} ml")


@app.command()
@guarded
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")] = Path("neurolesion-demo"),
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
) -> None:
    """Synthesise a case with every lesion type, segment it, print the lesions and the accuracy."""
    from neurolesion.demo import run_demo

    def progress(stage: str, fraction: float) -> None:
        typer.secho(f"[{fraction:4.0%}] {stage}", err=True, fg=typer.colors.CYAN)

    res = run_demo(output, seed=seed, progress=progress)
    _print_result(res.result.summary, res.result.lesions)
    typer.secho("accuracy against the simulated truth", bold=True)
    for task, sc in res.accuracy.items():
        extra = (
            f"  lesion F1 {sc['lesion_f1']:.3f} ({sc['found']}/{sc['true_lesions']} found, {sc['false_positives']} FP)"
            if "lesion_f1" in sc
            else ""
        )
        typer.echo(f"  {task:<7} Dice {sc['dice']:.3f}{extra}")
    report = res.result.files.get("report")
    typer.echo(f"case: {res.case_dir}")
    typer.echo(f"report: {report if report else 'not written'}")


@app.command()
@guarded
def synth(
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (one sub-folder per case).")],
    task: Annotated[
        list[str],
        typer.Option("--task", "-t", help="brain, wmh, cmb, lacune, epvs, ccm, tumor, csvd or all."),
    ] = ["all"],  # noqa: B006 - typer needs a list default
    n: Annotated[int, typer.Option("--n", min=1, help="Number of cases.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the first case (case i uses seed + i).")] = 0,
    sequences: Annotated[
        list[str] | None, typer.Option("--sequences", "-s", help="Sequences to simulate (default: all six).")
    ] = None,
    spacing: Annotated[float | None, typer.Option(help="Voxel size (mm) of the common grid.")] = None,
    grid: Annotated[
        str | None, typer.Option(help="common (one grid) or native (per-sequence grids).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="SynthConfig YAML.")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Also write preview.png per case.")] = False,
) -> None:
    """Simulate cases with known truth: one NIfTI per sequence, label maps and case.json per case."""
    from neurolesion.registry import check_sequence
    from neurolesion.synth.case import SynthConfig, simulate_case

    cfg = SynthConfig.from_yaml(config) if config else SynthConfig()
    if spacing is not None:
        cfg = SynthConfig.from_dict({**_shallow(cfg), "spacing": spacing}, "--spacing")
    if grid is not None:
        cfg = SynthConfig.from_dict({**_shallow(cfg), "grid": grid}, "--grid")
    seqs = [check_sequence(s) for v in sequences for s in v.split(",") if s] if sequences else None
    tasks = [t for v in task for t in v.split(",") if t]
    with typer.progressbar(range(n), label="simulating", file=sys.stderr) as bar:
        for i in bar:
            case = simulate_case(seed + i, tasks, seqs, cfg)
            folder = output / case.case_id
            case.write(folder)
            if preview:
                from neurolesion.synth.preview import write_preview

                write_preview(case, folder / "preview.png")
    typer.echo(str(output))


def _shallow(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, nested dataclasses kept as objects."""
    from dataclasses import fields

    return {f.name: getattr(obj, f.name) for f in fields(obj)}


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


@app.command()
@guarded
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Training configuration (YAML).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Run folder (default runs/<name>).")
    ] = None,
    fold: Annotated[
        int | None, typer.Option(help="Validation fold of the K-fold split (folder data).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue exactly from the run folder's last.pt.")] = False,
    threads: Annotated[int | None, typer.Option(help="CPU threads (overrides the config).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda (overrides the config).")] = None,
) -> None:
    """Train a network; checkpoints best.pt / last.pt (weights, config, card, versions) in the run folder."""
    import dataclasses
    import time

    from neurolesion.train.config import load_config
    from neurolesion.train.loop import train as run_train

    cfg = load_config(config)
    if threads is not None or device is not None:
        cfg = dataclasses.replace(cfg, threads=threads or cfg.threads, device=device or cfg.device)  # type: ignore[arg-type]
    out = output or Path("runs") / cfg.name
    log_losses: list[float] = []
    log_since = [time.perf_counter(), 0.0]  # time and step of the last log line
    with typer.progressbar(length=cfg.steps, label=f"training {cfg.name}", file=sys.stderr) as bar:

        def on_step(step: int, loss: float) -> None:
            bar.update(step - bar.pos)
            if sys.stderr.isatty():
                return
            # a log file gets no progress bar: one line every 100 steps instead
            log_losses.append(loss)
            if step % 100 == 0 or step == cfg.steps:
                now = time.perf_counter()
                per_step = (now - log_since[0]) / max(step - log_since[1], 1.0)
                mean_loss = sum(log_losses) / len(log_losses)
                typer.echo(f"step {step}/{cfg.steps}: loss {mean_loss:.4f}, {per_step:.2f} s/step", err=True)
                log_since[:] = [now, float(step)]
                log_losses.clear()

        def on_validate(entry: dict[str, Any]) -> None:
            dice = " ".join(f"{t} {v:.3f}" for t, v in entry["dice"].items())
            typer.echo(
                f"\nstep {entry['step']}: loss {entry['loss']:.4f}, Dice {dice}, lesion F1 {entry['mean_f1']:.3f}"
            )

        result = run_train(cfg, out, fold=fold, resume=resume, on_step=on_step, on_validate=on_validate)
    best = max((h["mean_dice"] for h in result.history), default=float("nan"))
    typer.echo(f"best mean Dice {best:.3f}; checkpoints {result.best} and {result.last}")


@app.command()
@guarded
def predict(
    input: Annotated[
        Path, typer.Argument(help="NIfTI file named after its sequence, NIfTI/BIDS/DICOM folder.")
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Shipped model name, model file or folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    mask: Annotated[
        Path | None, typer.Option(help="Brain mask (default: brain_mask.nii.gz beside the images).")
    ] = None,
    tta: Annotated[
        bool | None,
        typer.Option(
            "--tta/--no-tta", help="Mirror test-time augmentation (default: as each model's card says)."
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when present).")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Probability threshold (default: the model card's, else 0.5).")
    ] = None,
    min_size: Annotated[float, typer.Option("--min-size", help="Smallest lesion kept, mm3.")] = 0.0,
    precision: Annotated[str, typer.Option(help=_PRECISION_HELP)] = "auto",
) -> None:
    """Run one trained model on images already on one grid; write probability and lesion maps."""
    from neurolesion.infer.files import predict_files
    from neurolesion.models.card import load_model

    summary = predict_files(
        load_model(model), input, output, mask, tta, device, threshold, min_size, precision=precision
    )
    for task, t in summary["tasks"].items():
        typer.echo(f"{task}: {t['count']} lesions, {t['volume_ml']:.2f} ml")
    typer.echo(f"outputs in {output}")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
