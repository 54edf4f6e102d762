"""Benchmark the trainer's input pipeline against the models it feeds, and the loader's memory.

On CPU (the end-to-end models on CUDA as well when torch sees one), on synthetic shard folders
(:func:`emoprep.testing.shards.build_shard_folder`, with GloVe vectors, DisVoice-shaped acoustic
windows and face-mesh landmarks, so that rows are as heavy per position as real ones; sequences are
short: 3-8 tokens, 2-6 windows, 2-5 frames).  Measures in one run:

* ``loader``: rows/s of ``DataLoader(ShardStream(..., transform=featurizer), batch_size=32,
  collate_fn=collate)`` over the training split, one full epoch at a time (worker start-up
  included, as the trainer pays it every epoch), with 0 and with 2 loader workers; also the shuffled
  stream the trainer really uses (buffer 1024) and, with ``--shards DIR``, a real shard folder;
* ``models``: training steps/s and rows/s of the hand-crafted-feature models (lf-lstm, lf-trans,
  mult, emoembs; settings as a run resolves them: ``resolve_config(model)``, i.e. the registry's
  defaults; Adam, BCE with ``pos_weight``, gradient clipping) through
  :func:`emoprep.train.loop.train_epoch` on pre-collated batches (compute only) after a warm-up:
  the timed steps in 3 blocks (the best block is the figure, the mean is kept), one block more with
  a single intra-op thread, then end to end with the trainer's own loader (0 and 2 workers) feeding
  it.  ``--model-budget-s`` bounds the time per model (a slow model on a loaded machine is timed over
  fewer steps; ``steps_timed`` says how many).  ``train_over_loader`` is the model's compute-only
  rows/s over the loader-alone rows/s: below 1 the model is the bottleneck, above 1 the loader is;
* ``end_to_end_models``: the models that read face crops and log-mel chunks (``fe2e``, ``mesm``:
  registry family ``end_to_end``), on their own synthetic folder (``build_shard_folder(...,
  crops=True, logmel=True)``: 48x48 PNG crops, 128x32 log-mel chunks, GloVe text) whose rows are
  stretched to the demo's lengths (:data:`E2E_LENGTHS`: 6 face frames, 7 log-mel chunks, 11 tokens;
  positions cycled, masks with them).  Per model, at the paper's settings (``resolve_config``; FE2E
  batch 8, MESM batch 2 and p=0.5, and MESM at batch 8 too, to compare at equal batch): training
  samples/s and steps/s (``train_epoch`` on pre-collated batches already on the device, after a
  warm-up; best of the blocks, mean kept) and inference samples/s at batch 8 (eval mode,
  ``torch.no_grad``), on CPU and, when ``torch.cuda.is_available()``, on CUDA (same code); beside
  them the counted FLOPs per sample (:func:`emoprep.train.flops.count_flops`, one forward on the
  fresh weights that the inference is timed with) and MESM's counted/dense ratio.  MESM's sparse
  stages are masked dense convolutions, so its time follows the *dense* FLOPs:
  ``forward_gflop_per_s_dense`` is what the hardware ran, ``..._counted`` what is credited, and
  ``summary.end_to_end_models.mesm_over_fe2e`` puts the FLOP ratios beside the time ratios.
  ``--e2e-budget-s`` bounds each configuration;
* ``memory``: one epoch of the 0-worker loader per training-split size, each in a fresh process:
  peak RSS during the epoch (``VmHWM`` reset after imports and a one-row-group warm-up) and its
  growth over the RSS after the warm-up (and over the RSS right after imports), against reading the
  whole split into one table (``emoprep.read_shards``).  The slope in MB per 1000 rows shows that
  streaming stays flat (the shuffled stream grows until its 1024-row buffer is full, then stays).
  ``ru_maxrss`` is recorded but not used: Linux carries the parent's high-water mark over the
  child's exec, so in a child of this (large) process it reports the parent's size.

Run: ``python benchmarks/bench_train.py [--models all|NAME,...] [--train-rows 2000]
[--memory-rows 500,1000,2000,4000] [--steps 30] [--e2e-budget-s 20] [--threads N] [--shards DIR]
[--quick] [--device auto|cpu|cuda] [--out benchmarks/results]``.  On CUDA the model timings
use CUDA events.  Default run (every registered model): 3-6 minutes on 2
cores, about 2 of them the end-to-end models on CPU (a training step at batch 8 takes seconds
there); more when other work shares the cores, and then ``--threads 1`` measures more steadily (the
script warns).  ``--quick``: about a minute, with one timed step per end-to-end configuration, so
its end-to-end figures are rough.  Writes ``train.json`` (``train-quick.json``
with ``--quick``).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow
import torch
from torch.utils.data import DataLoader

from emoprep import read_manifest
from emoprep.format.manifest import Manifest
from emoprep.testing.shards import build_shard_folder
from emoprep.train import inputs as train_inputs
from emoprep.train import metrics as M
from emoprep.train.config import resolve_config
from emoprep.train.data import ShardStream
from emoprep.train.distributed import Processes
from emoprep.train.flops import count_flops, flops_summary
from emoprep.train.inputs import Featurizer, choose_branches, collate
from emoprep.train.labels import label_vectors
from emoprep.train.loop import make_loader, train_epoch
from emoprep.train.models import ModelContext, get_model, model_names
from emoprep.train.models.sparse import resolve_impl
from emoprep.train.run import Shards, Trainer

BATCH = 32
BLOCKS = 3
MODELS = ("lf-lstm", "lf-trans", "mult", "emoembs")
"""The hand-crafted-feature baselines (the default ``--models`` is every registered model: these and
the end-to-end ones, which get their own synthetic folder and measurements, see ``bench_e2e``)."""
E2E_LENGTHS = {"visual": 6, "acoustic": 7, "text": 11}
"""Positions per utterance fed to the end-to-end models: about the demo's (face frames, log-mel
chunks, tokens; ``shards/demo60``: 6.0 frames, 7.5 chunks, 10.4 tokens on average)."""
E2E_INFER_BATCH = 8


def family(model: str) -> str:
    return getattr(get_model(model), "family", "handcrafted")


def handcrafted_columns() -> dict[str, tuple[str, ...]]:
    """Columns a hand-crafted-feature model can read per modality, best first."""
    families = getattr(train_inputs, "FAMILIES", None)
    return families["handcrafted"] if families else train_inputs.CHOICES


# --- data ---------------------------------------------------------------------------------------
GLOVE = True
"""Whether the synthetic folders hold GloVe vectors (``--no-glove``: text from tokens instead)."""


def synthetic(root: Path, train_rows: int, cache: dict[int, Path]) -> Path:
    """A synthetic folder with ``train_rows`` training rows (built once per size)."""
    if train_rows not in cache:
        cache[train_rows] = build_shard_folder(
            root / f"synthetic-{train_rows}",
            {"train": train_rows, "valid": 32, "test": 32},
            shard_size=64,
            glove=GLOVE,
            aus=False,
            face_mesh=True,
            seed=0,
        )
    return cache[train_rows]


def fit(folder: Path, model_family: str = "handcrafted") -> tuple[Featurizer, np.ndarray, Manifest, float]:
    """Branches of every modality the folder holds for models of ``model_family``, and the featuriser
    fitted on its training split."""
    manifest = read_manifest(folder)
    held = manifest.counts.non_null_per_column or {}
    options = handcrafted_columns() if model_family == "handcrafted" else train_inputs.FAMILIES[model_family]
    modalities = tuple(m for m, cols in options.items() if any(held.get(c, 0) for c in cols))
    branches = choose_branches(manifest, modalities, {}, family=model_family)
    t = time.perf_counter()
    featurizer, targets = Featurizer.fit(folder, branches, manifest.label_names, max_len=500)
    return featurizer, targets, manifest, time.perf_counter() - t


def loader(folder: Path, featurizer: Featurizer, workers: int, shuffle: bool = False) -> DataLoader:
    stream = ShardStream(folder, "train", featurizer.columns(), transform=featurizer, shuffle=shuffle, seed=0)
    return DataLoader(stream, batch_size=BATCH, collate_fn=collate, num_workers=workers)


def time_loader(
    folder: Path, featurizer: Featurizer, workers: int, repeats: int, min_s: float, shuffle: bool = False
) -> dict:
    """Full epochs (worker start-up included) until ``repeats`` done and ``min_s`` spent; best and mean."""
    dl = loader(folder, featurizer, workers, shuffle)
    times, rows, lengths = [], 0, {}
    spent = 0.0
    while len(times) < repeats or (spent < min_s and len(times) < 200):
        rows = 0
        t = time.perf_counter()
        for batch in dl:
            rows += len(batch)
            if not lengths:
                lengths = {m: round(float(x.lengths.float().mean()), 1) for m, x in batch.inputs.items()}
        times.append(time.perf_counter() - t)
        spent += times[-1]
    return {
        "workers": workers,
        "shuffle": shuffle,
        "rows_per_epoch": rows,
        "epochs": len(times),
        "best_epoch_s": round(min(times), 4),
        "mean_epoch_s": round(float(np.mean(times)), 4),
        "rows_per_s": round(rows / min(times), 1),
        "rows_per_s_mean": round(rows / float(np.mean(times)), 1),
        "mean_positions_first_batch": lengths,
    }


# --- models -------------------------------------------------------------------------------------
def trainer_for(
    model: str,
    folder: Path,
    manifest: dict,
    featurizer: Featurizer,
    targets: np.ndarray,
    sets: dict | None = None,
    device: torch.device | None = None,
) -> Trainer:
    """The trainer a run builds (``sets``: overrides, as ``--set``), on ``device`` (default: CPU)."""
    cfg = resolve_config(model, sets=sets)
    shards = Shards(folder, manifest)
    labels = shards.label_names
    vectors = None
    if model == "emoembs" and "text" in featurizer.branches:  # as emoprep.train.run._context
        vectors, _ = label_vectors(folder, labels, featurizer.branches["text"].column)
    return Trainer(
        cfg,
        shards,
        featurizer,
        M.pos_weight(targets, labels),
        M.task_of(targets),
        Processes(0, 1, device or torch.device("cpu")),
        ModelContext(labels, vectors),
    )


def time_steps(
    trainer: Trainer, batches, steps: int, budget_s: float = float("inf")
) -> tuple[float, int, int]:
    """Up to ``steps`` steps of train_epoch over ``batches`` (an iterable), stopping early once
    ``budget_s`` is spent (at least one step); returns seconds, rows trained and steps taken."""
    seen: list[int] = []
    cfg = trainer.cfg
    t = time.perf_counter()
    clock = Clock(trainer.procs.device)
    clock.start()

    def counted():
        for b in itertools.islice(batches, steps):
            if seen and time.perf_counter() - t > budget_s:
                return
            seen.append(len(b))
            yield b

    train_epoch(
        trainer.model,
        counted(),
        trainer.optimizer,
        trainer.loss_fn,
        cfg.optim.grad_clip,
        trainer.procs.device,
    )
    return clock.stop(), sum(seen), len(seen)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA is asynchronous; a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    """Seconds of device work between ``start`` and ``stop``: CUDA events on a GPU (kernels run
    asynchronously, so host time would measure the launches), ``perf_counter`` on the CPU, or with
    ``cpu_time`` the calling thread's CPU time (``thread_time``): with one torch thread that is all the
    model's work, and unlike wall time it does not count the moments other processes hold the core,
    so figures taken on a shared machine stay comparable."""

    def __init__(self, device: torch.device, cpu_time: bool = False) -> None:
        self.cuda = device.type == "cuda"
        self.now = time.thread_time if cpu_time else time.perf_counter

    def start(self) -> None:
        if self.cuda:
            self.begin, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.begin.record()
        else:
            self.t0 = self.now()

    def stop(self) -> float:
        if self.cuda:
            self.end.record()
            self.end.synchronize()
            return self.begin.elapsed_time(self.end) / 1000
        return self.now() - self.t0


def bench_model(
    model: str,
    folder: Path,
    manifest: dict,
    featurizer: Featurizer,
    targets: np.ndarray,
    batches: list,
    steps: int,
    warmup: int,
    budget_s: float,
    loader_rows_s: dict[int, float],
) -> dict:
    trainer = trainer_for(model, folder, manifest, featurizer, targets)
    t0 = time.perf_counter()
    slice_s = budget_s / 6  # warm-up, 3 blocks, 1-thread block, end-to-end passes: each at most this
    time_steps(trainer, itertools.cycle(batches), warmup, slice_s)
    # The timed steps in BLOCKS blocks: the best block is the figure (as the loader's best epoch),
    # the mean over all steps is kept beside it; on a shared machine one slow block is other load.
    per = max(1, steps // BLOCKS)
    cycle = itertools.cycle(batches)
    blocks = [time_steps(trainer, cycle, per, slice_s) for _ in range(BLOCKS)]
    best_s, best_rows, best_n = min(blocks, key=lambda b: b[0] / b[2])
    all_s, all_rows, all_n = (sum(b[i] for b in blocks) for i in range(3))
    rows_s = best_rows / best_s
    out = {
        "parameters": sum(p.numel() for p in trainer.net.parameters()),
        "settings": trainer.cfg.settings,
        "steps_timed": all_n,
        "compute_steps_per_s": round(best_n / best_s, 2),
        "compute_rows_per_s": round(rows_s, 1),
        "ms_per_step": round(1000 * best_s / best_n, 1),
        "compute_steps_per_s_mean": round(all_n / all_s, 2),
        "compute_rows_per_s_mean": round(all_rows / all_s, 1),
    }
    threads = torch.get_num_threads()
    if threads > 1:  # the same steps with one intra-op thread: how much the other threads buy (or cost)
        torch.set_num_threads(1)
        try:
            one_s, _, one_n = time_steps(trainer, cycle, per, slice_s)
        finally:
            torch.set_num_threads(threads)
        out["compute_steps_per_s_1_thread"] = round(one_n / one_s, 2)
    # End to end: the trainer's own loader (not shuffled) feeding the same steps.
    for w in loader_rows_s:
        dl = iter(make_loader(trainer.stream("train"), BATCH, w))
        e2e_s, e2e_rows, e2e_n = time_steps(trainer, dl, per * BLOCKS, slice_s)
        del dl
        out[f"end_to_end_workers{w}_steps"] = e2e_n
        out[f"end_to_end_workers{w}_steps_per_s"] = round(e2e_n / e2e_s, 2)
        out[f"end_to_end_workers{w}_rows_per_s"] = round(e2e_rows / e2e_s, 1)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    for w, loader_rate in loader_rows_s.items():
        out[f"train_over_loader_workers{w}"] = round(rows_s / loader_rate, 3)
    # With 0 workers loading and training alternate: the loader's share of an epoch's time.
    r0 = rows_s / loader_rows_s[0]
    out["loader_share_of_time_workers0_est"] = round(r0 / (1 + r0), 3)
    out["loader_is_bottleneck"] = bool(r0 > 1)
    return out


# --- end-to-end models (face crops and log-mel chunks) ------------------------------------------
E2E_NOTE = (
    "MESM's sparse stages run as settings.sparse_impl=auto resolves on each device: on the CPU the "
    "gather path (rulebook convolutions over the kept sites, whose time follows "
    "counted_gflops_per_sample), on a GPU the masked path (dense convolutions of masked maps, whose "
    "time follows dense_gflops_per_sample); benchmarks/bench_mesm.py compares the two and FE2E "
    "in detail.  summary.end_to_end_models.mesm_over_fe2e puts the measured time ratios beside the "
    "FLOP ratios; forward_gflop_per_s_dense is the rate at the dense count, "
    "forward_gflop_per_s_counted the rate credited to the model.  FLOPs are counted once per model, on CPU, on the first inference "
    "batch with the fresh (seed 0) weights that inference is then timed with; MESM's kept sites "
    "depend on its weights, so a trained MESM's counted FLOPs differ."
)


def e2e_synthetic(root: Path, train_rows: int) -> Path:
    """A synthetic folder with 48x48 PNG face crops and 128x32 log-mel chunks beside the text."""
    return build_shard_folder(
        root / f"synthetic-e2e-{train_rows}",
        {"train": train_rows, "valid": 16, "test": 16},
        shard_size=64,
        glove=GLOVE,
        aus=False,
        face_mesh=False,
        crops=True,
        logmel=True,
        seed=0,
    )


def stretch(example: tuple, lengths: dict[str, int]) -> tuple:
    """The example with each modality's positions cycled to ``lengths[modality]`` (masks with them: a
    frame without a face stays masked): demo-length sequences from the short synthetic rows."""
    uid, split, target, inputs = example
    out = {}
    for m, (values, mask) in inputs.items():
        length = lengths.get(m)
        if length and len(values):
            index = np.arange(length) % len(values)
            values, mask = values[index], mask[index]
        out[m] = (values, mask)
    return uid, split, target, out


def e2e_batches(examples: list, batch_size: int, count: int) -> list:
    """``count`` collated batches of ``batch_size`` rows, taking the examples in turn."""
    return [
        collate([examples[(i * batch_size + j) % len(examples)] for j in range(batch_size)])
        for i in range(count)
    ]


def positions(batches: list) -> dict:
    """Per modality: positions per row (padded) and real positions per row on average."""
    return {
        m: {
            "padded": int(batches[0].inputs[m].mask.shape[1]),
            "mean_valid": round(
                float(np.mean([float(b.inputs[m].lengths.float().mean()) for b in batches])), 2
            ),
        }
        for m in batches[0].inputs
    }


def time_inference(
    net: torch.nn.Module, batches, n: int, budget_s: float, device: torch.device
) -> tuple[float, int, int]:
    """Up to ``n`` forwards in eval mode under ``torch.no_grad`` (at least one, then until ``budget_s``)."""
    net.eval()
    seen: list[int] = []
    t = time.perf_counter()
    clock = Clock(device)
    clock.start()
    with torch.no_grad():
        for b in itertools.islice(batches, n):
            if seen and time.perf_counter() - t > budget_s:
                break
            net(b.inputs)
            seen.append(len(b))
    return clock.stop(), sum(seen), len(seen)


def timed_blocks(run, blocks: int, per: int) -> dict:
    """``blocks`` calls of ``run(per) -> (seconds, rows, steps)``: the best block and the mean."""
    results = [run(per) for _ in range(blocks)]
    best_s, best_rows, best_n = min(results, key=lambda r: r[0] / r[2])
    all_s, all_rows, all_n = (sum(r[i] for r in results) for i in range(3))
    return {
        "steps_timed": all_n,
        "blocks": blocks,
        "samples_per_s": round(best_rows / best_s, 3),
        "steps_per_s": round(best_n / best_s, 3),
        "ms_per_step": round(1000 * best_s / best_n, 1),
        "samples_per_s_mean": round(all_rows / all_s, 3),
        "steps_per_s_mean": round(all_n / all_s, 3),
    }


def e2e_flops(net: torch.nn.Module, batch) -> dict:
    """Counted and dense FLOPs per sample of one forward (eval mode) on ``batch``."""
    summary = flops_summary(count_flops(net, batch.inputs))
    dense, counted = summary["dense_gflops_per_sample"], summary["counted_gflops_per_sample"]
    stages = [
        {
            "stage": st["stage"],
            "dense_gflops": round(st["dense_gflops"], 5),
            "counted_gflops": round(st["counted_gflops"], 5),
            "kept_fraction": round(st["kept_fraction"], 4),
        }
        for st in summary["stages"]
    ]
    return {
        "convention": summary["convention"],
        "rows": summary["rows"],
        "forward_only": True,
        "dense_gflops_per_sample": round(dense, 4),
        "counted_gflops_per_sample": round(counted, 4),
        "counted_over_dense": round(counted / dense, 4),
        "sparse_stages": [st["stage"] for st in stages if st["kept_fraction"] < 1.0],
        "stages": stages,
    }


def with_rates(out: dict, flops: dict | None) -> dict:
    """Forward GFLOP/s at the measured samples/s: counted (credited) and dense (what really ran)."""
    if flops:
        out["forward_gflop_per_s_counted"] = round(
            out["samples_per_s"] * flops["counted_gflops_per_sample"], 2
        )
        out["forward_gflop_per_s_dense"] = round(out["samples_per_s"] * flops["dense_gflops_per_sample"], 2)
    return out


def bench_e2e(
    models: list[str],
    root: Path,
    devices: list[torch.device],
    steps: int,
    warmup: int,
    blocks: int,
    budget_s: float,
    train_rows: int,
    light_warmup: bool = False,
) -> dict:
    """Training and inference throughput of the end-to-end models at demo sequence lengths, with
    their counted FLOPs, on every device in ``devices`` (compute only: pre-collated batches already
    on the device).  ``light_warmup`` (``--quick``): the training warm-up steps use the smallest
    batch (2 rows), which pays the first step's one-off costs (kernel set-up, Adam's state) at a
    quarter of a batch-8 step."""
    t = time.perf_counter()
    folder = e2e_synthetic(root, train_rows)
    featurizer, targets, manifest, fit_s = fit(folder, "end_to_end")
    build_s = time.perf_counter() - t - fit_s
    loader_e2e = time_loader(folder, featurizer, 0, 1, 0.0)
    stream = ShardStream(folder, "train", featurizer.columns(), transform=featurizer)
    examples = [stretch(e, E2E_LENGTHS) for e in stream]
    distinct = max(2, min(8, len(examples) // E2E_INFER_BATCH))
    sizes = sorted({resolve_config(m).optim.batch_size for m in models} | {E2E_INFER_BATCH})
    batches = {b: e2e_batches(examples, b, distinct) for b in sizes}
    out: dict = {
        "synthetic": {
            "train_rows": train_rows,
            "glove": GLOVE,
            "inputs": {m: b.column for m, b in featurizer.branches.items()},
            "image_shapes": {m: list(b.image_shape) for m, b in featurizer.branches.items() if b.image_shape},
            "build_s": round(build_s, 2),
            "featurizer_fit_s": round(fit_s, 3),
            "loader_workers0": loader_e2e,
            "loader_note": "rows as written (synthetic lengths: 2-5 frames, 2-6 chunks, 3-8 tokens), "
            "PNG decoding and log-mel standardisation included; the models below see longer rows",
        },
        "sequence_lengths": {
            "target": dict(E2E_LENGTHS),
            "how": "each synthetic row's positions cycled to the target length (masks with them)",
            "measured": positions(batches[E2E_INFER_BATCH]),
        },
        "distinct_batches": distinct,
        "devices": [str(d) for d in devices],
        "inference_batch_size": E2E_INFER_BATCH,
        "note": E2E_NOTE,
        "models": {},
    }
    for model in models:
        cfg = resolve_config(model)
        paper_bs = cfg.optim.batch_size
        train_sizes = [paper_bs] + ([E2E_INFER_BATCH] if paper_bs != E2E_INFER_BATCH else [])
        entry: dict = {
            "family": family(model),
            "paper_batch_size": paper_bs,
            "settings": cfg.settings,
            "optim": {
                "lr": cfg.optim.lr,
                "text_lr_scale": cfg.optim.text_lr_scale,
                "grad_clip": cfg.optim.grad_clip,
            },
            "devices": {},
        }
        for device in devices:
            t0 = time.perf_counter()
            per_device: dict = {"train": {}}
            for bs in train_sizes:
                sets = None if bs == paper_bs else {"optim": {"batch_size": bs}}
                trainer = trainer_for(model, folder, manifest, featurizer, targets, sets, device)
                entry.setdefault("parameters", sum(p.numel() for p in trainer.net.parameters()))
                on_device = [b.to(device) for b in batches[bs]]
                warm = [b.to(device) for b in batches[min(sizes)]] if light_warmup else on_device
                if bs == paper_bs:
                    # FLOPs and inference first, on the same fresh weights (MESM's kept sites depend on them)
                    infer_batches = [b.to(device) for b in batches[E2E_INFER_BATCH]]
                    infer_warmup = warmup
                    if "flops" not in entry:  # its forward (eval mode, batch 8) is one warm-up forward
                        entry["flops"] = {"device": str(device), **e2e_flops(trainer.net, infer_batches[0])}
                        infer_warmup = max(0, warmup - 1)
                    per_device["inference"] = with_rates(
                        bench_e2e_infer(
                            trainer.net, infer_batches, steps, infer_warmup, blocks, budget_s / 2, device
                        ),
                        entry.get("flops"),
                    )
                    del infer_batches
                per_device["train"][f"batch{bs}"] = with_rates(
                    {
                        "batch_size": bs,
                        "paper_default": bs == paper_bs,
                        **bench_e2e_train(trainer, on_device, steps, warmup, blocks, budget_s, warm),
                    },
                    entry.get("flops"),
                )
                del trainer, on_device, warm
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                infer = per_device["inference"]["samples_per_s"] if bs == paper_bs else None
                rate = per_device["train"][f"batch{bs}"]["samples_per_s"]
                print(
                    f"{model} {device} batch {bs}: train {rate} samples/s"
                    + (f", inference (batch {E2E_INFER_BATCH}) {infer} samples/s" if infer else ""),
                    file=sys.stderr,
                )
            per_device["seconds"] = round(time.perf_counter() - t0, 1)
            entry["devices"][device.type] = per_device
        flops = entry.get("flops", {})
        if flops.get("sparse_stages"):
            entry["sparse_execution"] = {
                "implementation": {d.type: resolve_impl(cfg.settings.get("sparse_impl", "auto"), d, cfg.settings.get("p", 0.5))
                                   for d in devices},
                "wall_time_follows": "gather: counted_gflops_per_sample; masked: dense_gflops_per_sample",
                "counted_over_dense": flops["counted_over_dense"],
            }
        out["models"][model] = entry
    out["seconds"] = round(time.perf_counter() - t, 1)
    return out


def bench_e2e_train(
    trainer: Trainer,
    batches: list,
    steps: int,
    warmup: int,
    blocks: int,
    budget_s: float,
    warm: list | None = None,
) -> dict:
    """Warm-up (on ``warm``, default ``batches``), then ``blocks`` blocks of training steps
    (train_epoch: Adam, BCE with pos_weight, clipping)."""
    slice_s = budget_s / (blocks + 1)
    time_steps(trainer, itertools.cycle(warm or batches), max(1, warmup), slice_s)
    cycle = itertools.cycle(batches)
    per = max(1, steps // blocks)
    return {
        "warmup_steps_max": max(1, warmup),
        "warmup_batch_size": len((warm or batches)[0]),
        **timed_blocks(lambda n: time_steps(trainer, cycle, n, slice_s), blocks, per),
    }


def bench_e2e_infer(
    net: torch.nn.Module,
    batches: list,
    steps: int,
    warmup: int,
    blocks: int,
    budget_s: float,
    device: torch.device,
) -> dict:
    """Warm-up, then ``blocks`` blocks of forwards in eval mode under ``torch.no_grad``."""
    slice_s = budget_s / (blocks + 1)
    cycle = itertools.cycle(batches)
    if warmup:
        time_inference(net, cycle, warmup, slice_s, device)
    per = max(1, steps // blocks)
    out = {
        "batch_size": len(batches[0]),
        "mode": "eval, torch.no_grad",
        "warmup_forwards_max": warmup,
        **timed_blocks(lambda n: time_inference(net, cycle, n, slice_s, device), blocks, per),
    }
    net.train()
    return out


def e2e_summary(e2e: dict) -> dict:
    """samples/s per model, batch and device, FLOPs per sample, and MESM against FE2E at batch 8."""
    models = e2e["models"]
    out: dict = {
        "train_samples_per_s": {
            m: {d: {b: r["samples_per_s"] for b, r in v["train"].items()} for d, v in e["devices"].items()}
            for m, e in models.items()
        },
        "train_steps_per_s": {
            m: {d: {b: r["steps_per_s"] for b, r in v["train"].items()} for d, v in e["devices"].items()}
            for m, e in models.items()
        },
        "inference_samples_per_s_batch8": {
            m: {d: v["inference"]["samples_per_s"] for d, v in e["devices"].items()}
            for m, e in models.items()
        },
        "counted_gflops_per_sample": {m: e["flops"]["counted_gflops_per_sample"] for m, e in models.items()},
        "dense_gflops_per_sample": {m: e["flops"]["dense_gflops_per_sample"] for m, e in models.items()},
        "counted_over_dense": {m: e["flops"]["counted_over_dense"] for m, e in models.items()},
    }
    if "fe2e" in models and "mesm" in models:
        fe2e, mesm = models["fe2e"], models["mesm"]
        cmp: dict = {
            "counted_flops": round(
                mesm["flops"]["counted_gflops_per_sample"] / fe2e["flops"]["counted_gflops_per_sample"], 3
            ),
            "dense_flops": round(
                mesm["flops"]["dense_gflops_per_sample"] / fe2e["flops"]["dense_gflops_per_sample"], 3
            ),
        }
        for d in fe2e["devices"]:
            if d not in mesm["devices"]:
                continue
            f, s = fe2e["devices"][d], mesm["devices"][d]
            cmp[d] = {
                "train_time_per_sample_batch8": round(
                    f["train"]["batch8"]["samples_per_s"] / s["train"]["batch8"]["samples_per_s"], 3
                ),
                "inference_time_per_sample_batch8": round(
                    f["inference"]["samples_per_s"] / s["inference"]["samples_per_s"], 3
                ),
            }
        out["mesm_over_fe2e"] = cmp
        out["mesm_over_fe2e_note"] = (
            "ratios MESM / FE2E, time per sample from samples/s at batch 8: the sparse stages run as "
            "masked dense convolutions, so time follows dense_flops, not counted_flops (see "
            "end_to_end_models.note)"
        )
    return out


# --- memory (each measurement in a fresh process) -----------------------------------------------
CHILD = r"""
import gc, json, resource, sys, time
from pathlib import Path
import torch
from torch.utils.data import DataLoader
import emoprep
from emoprep.format.reader import read_row_group, row_groups
from emoprep.train.data import ShardStream
from emoprep.train.inputs import Featurizer, collate

mode, folder, fz_path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")

featurizer = Featurizer.load(fz_path)
if mode != "whole":
    stream = ShardStream(folder, "train", featurizer.columns(), transform=featurizer,
                         shuffle=(mode == "stream_shuffled"), seed=0)
    dl = DataLoader(stream, batch_size=32, collate_fn=collate, num_workers=0)
gc.collect()
cold = status("VmRSS")
# Warm-up, the same in every mode: one row group read (all columns), featurised and collated, then
# dropped.  The first decode and the first tensors load code and fill allocator caches once (tens of
# MB whatever the split's size); the warm baseline leaves that out of the growth.
group = row_groups(folder, "train")[0]
warm_batch = collate(featurizer(read_row_group(group).select(featurizer.columns())))
del warm_batch
gc.collect()
base = status("VmRSS")
try:
    open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM: the peak from here on
    method = "VmHWM reset after imports and warm-up"
except OSError:
    method = "ru_maxrss (includes imports)"
t = time.perf_counter()
rows, extra = 0, {}
if mode == "whole":
    table = emoprep.read_shards(folder, split="train")
    rows = table.num_rows
    extra["table_mb"] = table.nbytes / 2**20
else:
    for batch in dl:
        rows += len(batch)
        del batch
seconds = time.perf_counter() - t
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # whole process, imports included
peak = status("VmHWM") if method.startswith("VmHWM") else maxrss
print(json.dumps({"rows": rows, "seconds": seconds, "rss_after_imports_mb": cold, "baseline_rss_mb": base,
                  "peak_rss_mb": peak, "growth_mb": peak - base, "growth_over_imports_mb": peak - cold,
                  "ru_maxrss_mb": maxrss, "method": method, **extra}))
"""


def measure_memory(mode: str, folder: Path, featurizer_json: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(folder), str(featurizer_json)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    if run.returncode:
        raise RuntimeError(f"memory child ({mode}, {folder}) failed:\n{run.stderr}")
    out = json.loads(run.stdout.strip().splitlines()[-1])
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in out.items()}


def slope_mb_per_1000(rows: list[int], mb: list[float]) -> float:
    return round(float(np.polyfit(np.asarray(rows, float), np.asarray(mb, float), 1)[0]) * 1000, 2)


# --- main ---------------------------------------------------------------------------------------
def machine() -> dict:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "pyarrow": pyarrow.__version__,
        "numpy": np.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--train-rows", type=int, default=2000, help="training rows of the synthetic folder (loader, models)"
    )
    ap.add_argument(
        "--memory-rows", default="500,1000,2000,4000", help="training-split sizes of the memory test"
    )
    ap.add_argument("--workers", default="0,2", help="loader workers to time (0 must be among them)")
    ap.add_argument("--steps", type=int, default=30, help="timed training steps per model")
    ap.add_argument("--warmup", type=int, default=5, help="untimed training steps per model first")
    ap.add_argument(
        "--model-budget-s",
        type=float,
        default=25.0,
        help="about this many seconds per model at most (a slow model is timed over fewer steps)",
    )
    ap.add_argument("--repeats", type=int, default=2, help="loader epochs per setting (the best is reported)")
    ap.add_argument(
        "--models",
        default="all",
        help="comma-separated model names, or all (the default: every registered model, hand-crafted "
        "and end-to-end)",
    )
    ap.add_argument(
        "--e2e-rows", type=int, default=64, help="training rows of the end-to-end synthetic folder"
    )
    ap.add_argument(
        "--e2e-budget-s",
        type=float,
        default=20.0,
        help="about this many seconds of training per end-to-end model, batch size and device (inference: "
        "half); a CPU step at batch 8 takes seconds, so few steps are timed there",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    ap.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="where the models are timed: auto = the CPU, and CUDA as well when torch sees it; cuda = the GPU "
        "only (timed with CUDA events); the loader and memory parts always run on the CPU",
    )
    ap.add_argument(
        "--shards", type=Path, default=None, help="a real shard folder to time the loader on as well"
    )
    ap.add_argument("--no-glove", action="store_true", help="synthetic text as tokens only, no GloVe vectors")
    ap.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    global GLOVE
    GLOVE = not args.no_glove
    if args.quick:
        args.train_rows, args.memory_rows = min(args.train_rows, 400), "250,500,1000"
        args.steps, args.warmup, args.repeats = min(args.steps, 6), min(args.warmup, 2), 1
        args.model_budget_s = min(args.model_budget_s, 8.0)
        args.e2e_rows = min(args.e2e_rows, 32)
    # End-to-end models: a CPU training step at batch 8 takes seconds, so --quick times one step (after
    # one warm-up step on a 2-row batch) per model, batch size and device, and one forward for inference.
    e2e_blocks = 1 if args.quick else BLOCKS
    e2e_steps, e2e_warmup = (1, 1) if args.quick else (args.steps, min(args.warmup, 2))
    e2e_budget_s = min(args.e2e_budget_s, 1.0) if args.quick else args.e2e_budget_s
    if args.threads:
        torch.set_num_threads(args.threads)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = os.getloadavg()[0] >= 0.75 * usable
    if busy and torch.get_num_threads() > 1:
        print(
            f"warning: load average {os.getloadavg()[0]:.1f} on {usable} cores: other work shares them, and "
            f"{torch.get_num_threads()} intra-op threads then wait on one another (CPU figures can be "
            "several times too slow); --threads 1 measures more steadily",
            file=sys.stderr,
        )
    workers = sorted({int(w) for w in args.workers.split(",")} | {0})
    memory_rows = sorted(int(r) for r in args.memory_rows.split(","))
    registered = model_names()
    wanted = registered if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
    for m in wanted:
        get_model(m)  # an unknown name fails here, before any work
    models = [m for m in wanted if family(m) == "handcrafted"]
    e2e_models = [m for m in wanted if family(m) == "end_to_end"]
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device")
    devices = {
        "auto": [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else []),
        "cpu": [torch.device("cpu")],
        "cuda": [torch.device("cuda")],
    }[args.device]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result: dict = {"machine": machine(), "quick": args.quick, "batch_size": BATCH, "models_asked": wanted}
    result["machine"]["busy_at_start"] = busy

    with tempfile.TemporaryDirectory(prefix="bench_train-") as tmp:
        tmp = Path(tmp)
        folders: dict[int, Path] = {}
        t = time.perf_counter()
        folder = synthetic(tmp, args.train_rows, folders)
        featurizer, targets, manifest, fit_s = fit(folder)
        result["synthetic"] = {
            "train_rows": args.train_rows,
            "shard_rows": 64,
            "glove": GLOVE,
            "bytes_train_split": sum(s.bytes or 0 for s in manifest.shards_of("train")),
            "build_s": round(time.perf_counter() - t - fit_s, 2),
            "inputs": {m: b.column for m, b in featurizer.branches.items()},
            "featurizer_fit_s": round(fit_s, 3),
        }
        print(
            f"synthetic folder: {args.train_rows} train rows ({result['synthetic']['build_s']} s)",
            file=sys.stderr,
        )

        # 1. the loader alone
        loaders = {f"workers{w}": time_loader(folder, featurizer, w, args.repeats, 0.0) for w in workers}
        loaders["workers0_shuffled"] = time_loader(folder, featurizer, 0, args.repeats, 0.0, shuffle=True)
        result["loader"] = {"synthetic": loaders}
        if args.shards is not None:
            real_fz, _, real_manifest, real_fit_s = fit(args.shards)
            result["loader"]["real"] = {
                "folder": str(args.shards.resolve()),
                "dataset": real_manifest.dataset,
                "train_rows": real_manifest.counts.rows_per_split.get("train"),
                "inputs": {m: b.column for m, b in real_fz.branches.items()},
                "featurizer_fit_s": round(real_fit_s, 3),
                **{
                    f"workers{w}": time_loader(args.shards, real_fz, w, max(args.repeats, 3), 1.0)
                    for w in workers
                },
            }
        loader_rows_s = {w: loaders[f"workers{w}"]["rows_per_s"] for w in workers}
        print(f"loader rows/s: {loader_rows_s}", file=sys.stderr)

        # 2. the models
        batches = list(itertools.islice(iter(loader(folder, featurizer, 0)), max(1, min(args.steps, 16))))
        result["models"] = {}
        for model in models:
            result["models"][model] = bench_model(
                model,
                folder,
                manifest,
                featurizer,
                targets,
                batches,
                args.steps,
                args.warmup,
                args.model_budget_s,
                loader_rows_s,
            )
            print(f"{model}: {result['models'][model]['compute_steps_per_s']} steps/s", file=sys.stderr)
            gc.collect()

        # 3. the end-to-end models (their own folder: face crops and log-mel chunks)
        if e2e_models:
            result["end_to_end_models"] = bench_e2e(
                e2e_models,
                tmp,
                devices,
                e2e_steps,
                e2e_warmup,
                e2e_blocks,
                e2e_budget_s,
                args.e2e_rows,
                light_warmup=args.quick,
            )
            gc.collect()

        # 4. memory as the split grows
        fz_json = tmp / "featurizer.json"
        featurizer.save(fz_json)
        memory: dict = {"rows": memory_rows, "modes": {}}
        for mode in ("stream", "stream_shuffled", "whole"):
            runs = []
            for n in memory_rows:
                runs.append(measure_memory(mode, synthetic(tmp, n, folders), fz_json))
                print(
                    f"memory {mode} {n}: peak {runs[-1]['peak_rss_mb']} MB, growth {runs[-1]['growth_mb']} MB",
                    file=sys.stderr,
                )
            memory["modes"][mode] = {
                "runs": runs,
                "peak_rss_mb": [r["peak_rss_mb"] for r in runs],
                "growth_mb": [r["growth_mb"] for r in runs],
                "slope_growth_mb_per_1000_rows": slope_mb_per_1000(
                    memory_rows, [r["growth_mb"] for r in runs]
                ),
                "slope_peak_mb_per_1000_rows": slope_mb_per_1000(
                    memory_rows, [r["peak_rss_mb"] for r in runs]
                ),
                "slope_growth_over_imports_mb_per_1000_rows": slope_mb_per_1000(
                    memory_rows, [r["growth_over_imports_mb"] for r in runs]
                ),
            }
        memory["modes"]["stream"]["what"] = (
            "ShardStream(shuffle=False) + DataLoader(batch 32, 0 workers, collate): one epoch"
        )
        memory["modes"]["stream_shuffled"]["what"] = (
            "as stream, shuffle=True with the default 1024-row buffer (the trainer's setting)"
        )
        memory["modes"]["whole"]["what"] = (
            "emoprep.read_shards(folder, split='train'): the whole split as one pyarrow table"
        )
        memory["baseline"] = (
            "growth_mb = peak RSS of the epoch (VmHWM reset) - RSS after imports and a warm-up "
            "(one row group read, featurised, collated, dropped); growth_over_imports_mb = "
            "the same peak - RSS right after imports; ru_maxrss_mb is not used (Linux keeps the parent's "
            "high-water mark across the child's exec)"
        )
        result["memory"] = memory

    models_out = result["models"]
    result["summary"] = {
        "loader_rows_per_s": loader_rows_s,
        "model_steps_per_s": {m: r["compute_steps_per_s"] for m, r in models_out.items()},
        "model_steps_per_s_1_thread": {
            m: r.get("compute_steps_per_s_1_thread") for m, r in models_out.items()
        },
        "model_rows_per_s": {m: r["compute_rows_per_s"] for m, r in models_out.items()},
        "model_train_over_loader_workers0": {
            m: r["train_over_loader_workers0"] for m, r in models_out.items()
        },
        "end_to_end_rows_per_s": {
            m: {w: r[f"end_to_end_workers{w}_rows_per_s"] for w in workers} for m, r in models_out.items()
        },
        "memory_slope_mb_per_1000_rows": {
            m: v["slope_growth_mb_per_1000_rows"] for m, v in memory["modes"].items()
        },
        "memory_peak_rss_mb": {
            m: dict(zip(memory_rows, v["peak_rss_mb"])) for m, v in memory["modes"].items()
        },
    }
    if "end_to_end_models" in result:
        result["summary"]["end_to_end_models"] = e2e_summary(result["end_to_end_models"])
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    path = args.out / ("train-quick.json" if args.quick else "train.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    print(f"written: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
