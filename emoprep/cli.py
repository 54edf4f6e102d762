"""``emoprep``: the command-line interface (click).  Thin by design: it parses flags into an
:class:`~emoprep.extraction.config.ExtractConfig` and calls the library; heavy modules are imported inside the
commands so that ``emoprep --help`` answers instantly.

Exit status of ``extract``: 0 complete without failures; 3 complete, with utterance failures recorded
in ``failures.parquet``; 1 incomplete (a shard task crashed; rerun to resume); 2 bad usage or a
missing resource (nothing was written); 130 interrupted (Ctrl-C; rerun to resume).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

EXIT_OK, EXIT_INCOMPLETE, EXIT_SETUP, EXIT_FAILURES, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _note_old_name(dataset: str) -> None:
    """Say once, on stderr, that a dataset name was replaced (the old name keeps working)."""
    from emoprep.extraction.readers import OLD_NAMES

    if dataset in OLD_NAMES:
        click.echo(f"note: --dataset {dataset} is now --dataset {OLD_NAMES[dataset]} (the same reader); "
                   f"'{dataset}' still works and writes what it wrote before", err=True)


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag)
        out[key.strip()] = val.strip()
    return out


storage_option = click.option(
    "--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE",
    help="Option of the object store behind s3:// (or gs://, ...) paths, e.g. client_kwargs.endpoint_url=URL "
         "or profile=NAME (repeatable; also $EMOPREP_STORAGE_OPTIONS). Never written to any output.")
"""``--storage-option``, shared by every command that takes a path; the command turns the pairs into
options with :func:`emoprep.format.storage.parse_storage_options`."""


def runtime_options(command: Callable) -> Callable:
    """Where the extraction DAG runs (``--scheduler``, ``--scheduler-file``, ``--workers``,
    ``--synchronous``): the same four options on every command that extracts (``extract``,
    ``predict``), passed on to :func:`emoprep.extraction.runtime.open_executor`."""
    for option in reversed((
        click.option("--scheduler", help="Address of a running Dask scheduler (tcp://host:8786) to run on."),
        click.option("--scheduler-file", type=click.Path(dir_okay=False),
                     help="A running Dask scheduler's --scheduler-file (JSON) to run on (SLURM, dask-jobqueue; "
                          "docs/cluster.md)."),
        click.option("--workers", type=int, help="Worker processes of the local cluster (default: one per core)."),
        click.option("--synchronous", is_flag=True,
                     help="Run in this process with Dask's synchronous scheduler (debugging)."),
    )):
        command = option(command)
    return command


class PathOrURL(click.ParamType):
    """A local path, checked like ``click.Path(**checks)`` (``file://`` URLs included), or an fsspec URL
    (``s3://bucket/prefix``), passed on as it is: only the command reaches its store, with the
    storage options."""

    name = "path|url"

    def __init__(self, **checks: bool) -> None:
        self.path = click.Path(path_type=Path, **checks)

    def convert(self, value: str | Path, param: click.Parameter | None, ctx: click.Context | None) -> str | Path:
        from emoprep.format.storage import is_url, local_path

        if is_url(value):
            return value
        return self.path.convert(local_path(value), param, ctx)


def _storage_options(pairs: tuple[str, ...]) -> dict:
    """The options of ``--storage-option`` and the environment; bad usage exits with status 2."""
    from emoprep.errors import SetupError
    from emoprep.format.storage import parse_storage_options

    try:
        return parse_storage_options(pairs)
    except SetupError as exc:
        raise click.BadParameter(str(exc), param_hint="--storage-option") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="emoprep")
def main() -> None:
    """Turn raw multimodal emotion datasets into model-ready Parquet shards."""


@main.command()
@click.option("--dataset", required=True, help="mosei, iemocap, recordings (your own; old name: manifest) or demo (built-in, offline).")
@click.option("--root", help="Raw dataset folder or its URL (mosei, iemocap: s3://bucket/MOSEI), or the recordings "
                            "list file (which may be a URL: s3://bucket/list.csv). Optional for demo.")
@click.option("--out", required=True, type=PathOrURL(file_okay=False),
              help="Output folder for shards, or an object-storage prefix (s3://bucket/prefix, gs://..., memory://...).")
@click.option("--glove", help="GloVe text file (glove.840B.300d.txt) or its URL. Default: $EMOPREP_GLOVE; none = tokens only.")
@storage_option
@click.option("--media-cache", metavar="SIZE",
              help="Bound of each worker's cache of media fetched from URLs (default 10GB; also $EMOPREP_MEDIA_CACHE).")
@click.option("--modalities", help="Comma list of text,acoustic,logmel,visual (default: the dataset's spec).")
@click.option("--acoustic", "acoustic_backends", help="Acoustic sets: disvoice,egemaps,compare (default disvoice).")
@click.option("--au-backend", type=click.Choice(["none", "openface", "pyfeat"]), help="Action-unit backend.")
@click.option("--au-option", multiple=True, metavar="KEY=VALUE", help="AU backend setting, e.g. csv_dir=PATH.")
@click.option("--face-size", type=int, help="Face crop size in pixels (48, 112, 224, ...).")
@click.option("--frame-interval", type=float, help="Seconds between sampled video frames (default 0.5).")
@click.option("--shard-size", type=int, help="Utterances per shard file (default from the dataset spec).")
@click.option("--option", "dataset_options", multiple=True, metavar="KEY=VALUE", help="Dataset reader option (see README).")
@click.option("--spec", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML run spec overriding defaults.")
@runtime_options
@click.option("--overwrite", is_flag=True,
              help="Recompute every shard, replacing shards of another configuration (refused without it).")
@click.option("--limit", type=int, help="Only the first N utterances (a quick trial run).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--break-lock", is_flag=True,
              help="Take over the output of a run that is gone: an expired lease on object storage, or a local "
                   "lock recorded by another host. Only when you know that run no longer writes.")
@click.option("--lease-ttl", type=click.FloatRange(min=1), default=120, show_default=True, metavar="SECONDS",
              help="Object storage: the run's lease on --out expires this long after the run stops renewing it.")
def extract(**kw) -> None:
    """Extract features from a dataset into Parquet shards (resumable: rerun to continue)."""
    from rich.markup import escape

    from emoprep.extraction.config import build_config
    from emoprep.errors import EmoprepError
    from emoprep.extraction import run_extract
    from emoprep.extraction.media.fetch import parse_cache_size
    from emoprep.extraction.progress import console, print_summary, progress_bar

    overrides: dict = {"shard_size": kw["shard_size"]}
    if kw["modalities"]:
        overrides["modalities"] = _csv(kw["modalities"])
    if kw["acoustic_backends"]:
        overrides["acoustic"] = {"backends": _csv(kw["acoustic_backends"])}
    visual = {
        "au_backend": kw["au_backend"],
        "face_size": kw["face_size"],
        "frame_interval_s": kw["frame_interval"],
    }
    if kw["au_option"]:
        visual["au_options"] = sorted(_pairs(kw["au_option"], "--au-option").items())
    overrides["visual"] = {k: v for k, v in visual.items() if v is not None}
    if kw["dataset_options"]:
        overrides["dataset_options"] = _pairs(kw["dataset_options"], "--option")
    _note_old_name(kw["dataset"])
    try:
        config = build_config(kw["dataset"], overrides, kw["spec"])
        storage_options = _storage_options(kw["storage_options"])
        with progress_bar(disable=kw["quiet"]) as observer:
            summary = run_extract(
                config,
                kw["root"],
                kw["out"],
                glove=kw["glove"],
                storage_options=storage_options,
                media_cache=parse_cache_size(kw["media_cache"]),
                scheduler=kw["scheduler"],
                scheduler_file=kw["scheduler_file"],
                workers=kw["workers"],
                synchronous=kw["synchronous"],
                overwrite=kw["overwrite"],
                limit=kw["limit"],
                observer=observer,
                break_lock=kw["break_lock"],
                lease_ttl_s=kw["lease_ttl"],
            )
        print_summary(summary)  # inside the try: a Ctrl-C while it prints still exits 130, not by the signal
    except EmoprepError as exc:
        console().print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(EXIT_SETUP)
    except KeyboardInterrupt:
        console().print("[yellow]interrupted[/]: finished shards are kept; rerun the same command to resume.")
        sys.exit(EXIT_INTERRUPTED)
    if not summary.complete:
        sys.exit(EXIT_INCOMPLETE)
    sys.exit(EXIT_FAILURES if summary.failure_records else EXIT_OK)


@main.command()
@click.argument("path", type=PathOrURL(exists=True))
@click.option("--verify", is_flag=True,
              help="First check every file against manifest.json (sizes, sha256); exit 1 on any mismatch.")
@storage_option
def inspect(path: Path | str, verify: bool, storage_options: tuple[str, ...]) -> None:
    """Summarise a shard folder (a local folder or a URL): rows per split, columns and shapes, failures,
    backends, OOV rate."""
    from emoprep.errors import EmoprepError
    from emoprep.format.storage import redact
    from emoprep.report.folder_summary import inspect_output

    options = _storage_options(storage_options)
    shown = redact(str(path))
    try:
        if verify:
            from emoprep.format.verify import verify_output

            checked, problems = verify_output(path, options)
            if problems:
                for problem in problems:
                    click.echo(f"verify: {problem}", err=True)
                click.echo(f"verify: {len(problems)} problem(s) in {shown}; rerun the extraction that wrote it "
                           "(or copy the folder again) to repair it", err=True)
                sys.exit(EXIT_INCOMPLETE)
        inspect_output(path, options)
        if verify:
            from emoprep.format.names import MANIFEST

            click.echo(f"verify: {checked} file(s) match {MANIFEST}", err=True)
    except (FileNotFoundError, EmoprepError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_SETUP)


@main.command()
@click.option("--markdown", is_flag=True, help="Render as Markdown (the page in schemas/README.md).")
def schema(markdown: bool) -> None:
    """Print the output schema: every column, its type, unit and what a null means."""
    if markdown:
        from emoprep.format.schema_docs import render_markdown

        click.echo(render_markdown(), nl=False)
        return
    from emoprep.format.schema import utterance_schema

    click.echo(utterance_schema().to_string(show_field_metadata=False))


@main.command("fetch-models")
@click.argument("backend", type=click.Choice(["pyfeat"]))
@click.option("--dir", "dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to download into; pass it to runs with --au-option model_dir=DIR.")
def fetch_models(backend: str, dest: Path) -> None:
    """Download model weights on a machine with internet, for offline runs later.

    py-feat's action-unit models live on the HuggingFace hub; emoprep never downloads at run time.
    Copy the folder to the offline machine and run extract with
    --au-backend pyfeat --au-option model_dir=DIR.
    """
    from emoprep.errors import EmoprepError
    from emoprep.extraction.extractors.au.pyfeat import fetch_pyfeat_models

    try:
        files = fetch_pyfeat_models(dest)
    except EmoprepError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_SETUP)
    click.echo(f"{len(files)} file(s) in {dest}; use --au-backend {backend} --au-option model_dir={dest}")


@main.command("check-raw")
@click.option("--dataset", required=True, help="mosei, iemocap, recordings (old name: manifest) or demo.")
@click.option("--root", type=PathOrURL(),
              help="Raw dataset folder (or the recordings list file), or its URL as for extract. Optional for demo.")
@click.option("--option", "dataset_options", multiple=True, metavar="KEY=VALUE", help="Dataset reader option (see README).")
@click.option("--spec", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML run spec overriding defaults.")
@storage_option
def check_raw_command(dataset: str, root: Path | str | None, dataset_options: tuple[str, ...], spec: Path | None,
                      storage_options: tuple[str, ...]) -> None:
    """Validate a raw dataset tree without extracting: counts per split and class, missing media,
    unparseable lines (file:line), and how the counts compare with the full release."""
    from emoprep.extraction.config import build_config
    from emoprep.extraction.readers.check import check_raw
    from emoprep.errors import EmoprepError

    overrides = {"dataset_options": _pairs(dataset_options, "--option")} if dataset_options else {}
    _note_old_name(dataset)
    try:
        config = build_config(dataset, overrides, spec)
    except EmoprepError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_SETUP)
    report = check_raw(dataset, root, config, _storage_options(storage_options))
    click.echo(report.render())
    sys.exit(EXIT_OK if report.ok else EXIT_SETUP)



@main.command(context_settings={"show_default": True})
@click.argument("model")
@click.option("--shards", "shards_dir", required=True, type=PathOrURL(file_okay=False),
              help="A finished shard folder (written by `emoprep extract`): a path or a URL (s3://bucket/prefix).")
@click.option("--out", required=True, type=PathOrURL(file_okay=False),
              help="Run folder to create (or resume): a path or a URL; checkpoints are put there after every epoch.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML overriding pipelines/train/MODEL.yaml.")
@click.option("--preset", metavar="NAME",
              help="paper: everything the paper states for fe2e/mesm on the shards' dataset (pipelines/train/MODEL-iemocap.yaml "
                   "or MODEL-mosei.yaml: ALBERT text, so give settings.albert_path or EMOPREP_ALBERT); --config and --set override it.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one setting, e.g. optim.lr=1e-3 (repeatable).")
@click.option("--seed", type=int, help="Random seed (default 0, or the config's).")
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]), help="auto uses a GPU when present.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last finished epoch.")
@click.option("--quiet", is_flag=True, help="No progress bars or tables.")
@storage_option
def train(model: str, shards_dir: Path | str, out: Path | str, config_file: Path | None, preset: str | None,
          sets: tuple[str, ...], seed: int | None, device: str, resume: bool, quiet: bool,
          storage_options: tuple[str, ...]) -> None:
    """Train MODEL on a shard folder with the MESM paper's protocol: lf-lstm, lf-trans, mult, emoembs
    (hand-crafted features) or fe2e, mesm (end to end on face crops and log-mel chunks).

    The paper's settings for IEMOCAP or MOSEI shards, ALBERT text included: --preset paper.

    Several processes or GPUs: torchrun --nproc_per_node N -m emoprep train MODEL ...
    """
    from rich.markup import escape

    from emoprep.errors import EmoprepError
    from emoprep.train.config import parse_sets
    from emoprep.train.progress import TrainingProgress
    from emoprep.train.run import train as run_training

    console = TrainingProgress().console
    options = _storage_options(storage_options)
    try:
        run_training(model, shards_dir, out, config_file=config_file, sets=parse_sets(sets), seed=seed, device=device,
                     resume=resume, quiet=quiet, preset=preset, storage_options=options)
    except EmoprepError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(EXIT_SETUP)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: finished epochs are kept; continue with the same command and --resume.")
        sys.exit(EXIT_INTERRUPTED)


@main.command()
@click.argument("run", type=PathOrURL(exists=True, file_okay=False))
@click.option("--shards", "shards_dir", type=PathOrURL(file_okay=False),
              help="Shard folder to score, a path or a URL (default: the one the run trained on).")
@click.option("--split", default="test", show_default=True, help="Split to score.")
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]))
@storage_option
def evaluate(run: Path | str, shards_dir: Path | str | None, split: str, device: str, storage_options: tuple[str, ...]) -> None:
    """Score a finished training RUN (a folder or a URL) on a split, with the thresholds it chose on validation."""
    from rich.markup import escape

    from emoprep.errors import EmoprepError
    from emoprep.train.progress import TrainingProgress
    from emoprep.train.run import evaluate as run_evaluation

    try:
        run_evaluation(run, shards_dir, split, device, storage_options=_storage_options(storage_options))
    except EmoprepError as exc:
        TrainingProgress().console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(EXIT_SETUP)


@main.command()
@click.argument("run", type=PathOrURL(exists=True, file_okay=False))
@click.argument("media", nargs=-1, type=click.Path(path_type=Path))
@click.option("--recordings", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A recordings list (.csv/.jsonl, the format of --dataset recordings) instead of MEDIA: its rows are the utterances.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Parquet file to write.")
@click.option("--transcript", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A timed transcript (.srt/.vtt) of the one MEDIA file; default: the .srt/.vtt beside each file.")
@click.option("--window", default=4.0, show_default=True, help="Without a transcript: window length (seconds).")
@click.option("--hop", default=2.0, show_default=True, help="Without a transcript: seconds between window starts.")
@click.option("--glove", help="The GloVe file the run's shards were extracted with (checked by sha256). Default: $EMOPREP_GLOVE.")
@click.option("--keep-features", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the extracted features (a shard folder) here; rerunning the same command reuses them. "
                   "With --scheduler or --scheduler-file, a folder the cluster's workers share.")
@runtime_options
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@storage_option
def predict(run: Path | str, media: tuple[Path, ...], recordings: Path | None, out: Path, transcript: Path | None,
            window: float, hop: float, glove: str | None, keep_features: Path | None, scheduler: str | None,
            scheduler_file: str | None, workers: int | None, synchronous: bool, device: str, quiet: bool,
            storage_options: tuple[str, ...]) -> None:
    """Apply a trained RUN (a folder or a URL) to new recordings: MEDIA files (or --recordings LIST) in, one
    row per utterance out.

    Features are extracted exactly as for the run's training shards.  A media file is cut into its
    transcript's cues (.srt/.vtt beside it, or --transcript) or into --window second windows every
    --hop seconds.  Columns: id, media, start, end, text, prob_<label> and pred_<label> (the run's
    validation thresholds) per class, modalities (those the row had), face, error (failure rows).
    Draw it with `emoprep report OUT.parquet --out timeline.html`.  Exit status 3 when some rows failed.
    """
    import pyarrow.parquet as pq
    from rich.markup import escape

    from emoprep.errors import EmoprepError
    from emoprep.extraction.progress import console, progress_bar
    from emoprep.prediction import predict as run_prediction

    options = _storage_options(storage_options)
    try:
        with progress_bar(disable=quiet) as observer:
            table = run_prediction(run, list(media), recordings=recordings, transcript=transcript, window=window, hop=hop,
                                   glove=glove, scheduler=scheduler, scheduler_file=scheduler_file, workers=workers,
                                   synchronous=synchronous,
                                   work_dir=keep_features, device=device, observer=observer, storage_options=options)
    except EmoprepError as exc:
        console().print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(EXIT_SETUP)
    except KeyboardInterrupt:
        console().print("[yellow]interrupted[/]" + (f": extracted features are kept in {keep_features}" if keep_features else ""))
        sys.exit(EXIT_INTERRUPTED)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(out)
    failed = sum(e is not None for e in table.column("error").to_pylist())
    click.echo(f"wrote {out}: {table.num_rows} row(s), {failed} failure row(s)")
    sys.exit(EXIT_FAILURES if failed else EXIT_OK)


@main.command()
@click.argument("model", required=False)
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Count a trained run's model on its own utterances instead (MODEL not needed).")
@click.option("--split", default="test", show_default=True, help="With --run: the split whose utterances are counted.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Model settings, e.g. settings.p=0.5.")
@click.option("--face-size", default=48, show_default=True, help="Face crop size (pixels).")
@click.option("--frames", default=10, show_default=True, help="Face frames per utterance.")
@click.option("--chunks", default=10, show_default=True, help="Log-mel chunks (400 ms) per utterance.")
@click.option("--tokens", default=20, show_default=True, help="Words per utterance.")
def flops(model: str | None, run_dir: Path | None, split: str, sets: tuple[str, ...], face_size: int, frames: int,
          chunks: int, tokens: int) -> None:
    """Count FLOPs per utterance of fe2e or mesm, stage by stage (compare with the paper's 8.65 / 5.18 / 4.54 GFLOPs).

    Without --run the weights are random, so MESM keeps about a fraction p of the sites at its first
    stage; a trained run's attention decides for itself.
    """
    from rich.markup import escape
    from rich.table import Table

    from emoprep.errors import EmoprepError
    from emoprep.train.config import parse_sets
    from emoprep.train.progress import TrainingProgress

    console = TrainingProgress().console
    try:
        if run_dir is not None:
            from emoprep.train.inspection import flops_of_run

            report, title = flops_of_run(run_dir, split), f"{run_dir} on {split} utterances"
        elif model:
            from emoprep.train.inspection import flops_of_fresh_model

            _, report = flops_of_fresh_model(model, parse_sets(sets), face_size, frames, chunks, tokens)
            title = f"{model}, random weights: {frames} faces of {face_size}x{face_size}, {chunks} log-mel chunks, {tokens} words"
        else:
            raise click.UsageError("give MODEL (fe2e or mesm) or --run RUN")
    except EmoprepError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(EXIT_SETUP)
    table = Table(title=title, title_justify="left")
    for column in ("stage", "dense GFLOPs", "counted GFLOPs", "kept"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    n = report.batch_size
    for s in report.stages:
        table.add_row(s.stage, f"{s.dense / n / 1e9:.4f}", f"{s.counted / n / 1e9:.4f}", f"{s.kept_fraction:.2f}")
    table.add_row("[bold]per utterance[/]", f"[bold]{report.dense_per_sample / 1e9:.3f}[/]",
                  f"[bold]{report.counted_per_sample / 1e9:.3f}[/]", "")
    click.echo()
    console.print(table)


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG file to write.")
@click.option("--utterance", help="utterance_id to draw (default: the first of the split).")
@click.option("--split", default="test", show_default=True)
def attention(run: Path, out: Path, utterance: str | None, split: str) -> None:
    """Draw a trained MESM run's attention for one utterance: faces and log-mel chunks with each sparse
    stage's attention overlaid and the kept positions outlined (the paper's figure)."""
    from rich.markup import escape

    from emoprep.errors import EmoprepError
    from emoprep.train.inspection import attention_picture
    from emoprep.train.progress import TrainingProgress

    try:
        path = attention_picture(run, out, utterance, split)
    except EmoprepError as exc:
        TrainingProgress().console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(EXIT_SETUP)
    click.echo(f"wrote {path}")


@main.command()
@click.argument("path", type=PathOrURL(exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="HTML file to write.")
@click.option("--shards", type=PathOrURL(exists=True, file_okay=False),
              help="For a training run: its shard folder (a path or a URL), when it is no longer where the run was trained.")
@click.option("--sample", "sample_groups", default=12, show_default=True,
              help="For a shard folder: Parquet row groups (16 rows each) the pictures are drawn from.")
@storage_option
def report(path: Path | str, out: Path, shards: Path | str | None, sample_groups: int, storage_options: tuple[str, ...]) -> None:
    """Write one self-contained HTML page about a shard folder, a training run (either a folder or a URL)
    or predictions (images embedded).

    A shard folder: rows and labels per split, durations, faces found and a contact sheet of crops,
    a log-mel example, acoustic features and AUs per label, GloVe OOV, failures, backends.  A run:
    learning curves, per-class metrics, thresholds and TP/FP/FN/TN, the worst wrong predictions with
    their text and faces, and MESM's attention pictures.  A predictions file (`emoprep predict --out`): a
    timeline per media file, class probabilities over time with the predicted labels, the faces and the
    transcript lines.
    """
    import time

    from rich.markup import escape

    from emoprep.console import console as terminal
    from emoprep.errors import EmoprepError
    from emoprep.report import build_report

    console = terminal()
    started = time.perf_counter()
    options = _storage_options(storage_options)
    try:
        with console.status("rendering the report"):
            written = build_report(path, out, shards, sample_groups, options)
    except EmoprepError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(EXIT_SETUP)
    click.echo(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
