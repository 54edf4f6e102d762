"""Does MESM's sparsity save time?  FE2E against MESM's sparse stages, wall time and memory beside
counted FLOPs, in one process with the same settings for every configuration.

    python benchmarks/bench_mesm.py --run runs/demo60-mesm [--ps 0.3,0.5,0.7,0.9] [--lengths demo,mosei]
                                    [--threads 1] [--device cpu|cuda] [--quick]

Inputs: with ``--run`` (a MESM run trained on the larger demo), the test utterances of its shards
through its own featuriser, and the model's settings (``cnn_width``, ``d_model``, ...) from its
``config.yaml``; without, the synthetic end-to-end folder of ``bench_train.py`` and the registry's
settings (random attention only).  Rows are stretched to two lengths (positions cycled, masks with
them): ``demo`` (6 faces, 7 log-mel chunks, 11 tokens, as the larger demo) and ``mosei`` (14 faces,
18 chunks, 25 tokens, a typical CMU-MOSEI utterance at the paper's frame rate).

Configurations, each timed on the same pre-collated batches (batch 8, already on the device):

* ``fe2e``: the dense baseline;
* ``mesm`` at each ``p``, ``sparse_impl=gather`` (rulebook convolutions over the kept sites), with
  ``random`` attention (fresh weights, seed 0) and, with ``--run``, the run's ``trained`` attention
  (its best weights; ``p`` is set on the loaded model, so the attention is the one learned at the
  run's own ``p``);
* ``mesm`` at p = 0.5 with ``sparse_impl=masked`` (dense convolutions of masked maps: the reference
  implementation, FE2E's cost) for both attentions.

Per configuration: training samples/s (Adam, BCE with logits, ``train_epoch``; the weights are
restored before each configuration, so training steps do not move the trained attention between
them) and inference samples/s (eval mode, ``torch.no_grad``), best of ``--blocks`` blocks after a
warm-up; peak memory during training and during inference (CPU: the process's peak RSS over its
RSS before, freed heap returned with ``malloc_trim`` and ``VmHWM`` reset through
``/proc/self/clear_refs``; CUDA: ``max_memory_allocated``); the
counted FLOPs per sample (:func:`emoprep.train.flops.count_flops`) and each sparse stage's kept
fraction.  ``summary`` puts each MESM configuration's time ratio against FE2E (FE2E time / MESM
time, so above 1 is faster) beside its counted-FLOPs ratio (MESM / FE2E).  ``profile`` times the
forward of each part of the model (stem and low blocks, each sparse stage, MLP, transformers) for
FE2E and for MESM at p = 0.5 (trained attention when given): where the time goes.

On CUDA the timings use CUDA events; ``--clock cpu`` times the CPU with the timing thread's CPU
time instead of wall time (one thread), for figures that other processes on the machine do not move.  Writes ``benchmarks/results/mesm.json`` (``mesm-quick.json``
with ``--quick``: one p, demo length, one block).
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import ctypes.util
import gc
import dataclasses
import itertools
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import Clock, e2e_batches, e2e_synthetic, fit, machine, stretch  # noqa: E402

from emoprep.train.config import load_run_config, resolve_config  # noqa: E402
from emoprep.train.data import ShardStream  # noqa: E402
from emoprep.train.flops import count_flops, flops_summary  # noqa: E402
from emoprep.train.inputs import Featurizer  # noqa: E402
from emoprep.train.loop import train_epoch  # noqa: E402
from emoprep.train.models import ModelContext, get_model  # noqa: E402
from emoprep.train.models.cnn import ImageCNN, Stage  # noqa: E402
from emoprep.train.models.mesm import TextQueriedAttention  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LENGTHS = {
    "demo": {"visual": 6, "acoustic": 7, "text": 11},
    "mosei": {"visual": 14, "acoustic": 18, "text": 25},
}
BATCH = 8
LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


class PeakMemory:
    """Peak memory of a block of work, in MB over what was in use when it started."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    @staticmethod
    def _status(key: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            # Hand freed heap back to the OS first, or the peak of an earlier configuration's cached
            # blocks would hide this one's; then reset VmHWM to the current RSS.
            gc.collect()
            if LIBC is not None:
                LIBC.malloc_trim(0)
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass
            self.base = self._status("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) / 2**20 - self.base
        else:
            self.peak = self._status("VmHWM") - self.base


def best_rate(run, blocks: int, per: int) -> dict:
    """``blocks`` calls of ``run(per) -> (seconds, rows)``: the best block's samples/s and the mean."""
    results = [run(per) for _ in range(blocks)]
    return {"samples_per_s": round(max(r / s for s, r in results), 3),
            "samples_per_s_mean": round(sum(r for _, r in results) / sum(s for s, _ in results), 3),
            "steps_timed": blocks * per}


def time_training(net: torch.nn.Module, batches: list, clock: Clock, device: torch.device, warmup: int,
                  blocks: int, per: int) -> dict:
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-5)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    cycle = itertools.cycle(batches)

    def steps(n: int) -> tuple[float, int]:
        chosen = list(itertools.islice(cycle, n))
        clock.start()
        train_epoch(net, chosen, optimizer, loss_fn, 0.0, device)
        return clock.stop(), sum(len(b) for b in chosen)

    steps(warmup)
    with PeakMemory(device) as memory:
        out = best_rate(steps, blocks, per)
    return {**out, "peak_mb": round(memory.peak, 1)}


def time_inference(net: torch.nn.Module, batches: list, clock: Clock, device: torch.device, warmup: int,
                   blocks: int, per: int) -> dict:
    net.eval()
    cycle = itertools.cycle(batches)

    def forwards(n: int) -> tuple[float, int]:
        chosen = list(itertools.islice(cycle, n))
        clock.start()
        with torch.no_grad():
            for b in chosen:
                net(b.inputs)
        return clock.stop(), sum(len(b) for b in chosen)

    forwards(warmup)
    with PeakMemory(device) as memory:
        out = best_rate(forwards, blocks, per)
    return {**out, "peak_mb": round(memory.peak, 1)}


def flops_of(net: torch.nn.Module, batch) -> dict:
    s = flops_summary(count_flops(net, batch.inputs))
    return {"counted_gflops_per_sample": round(s["counted_gflops_per_sample"], 4),
            "dense_gflops_per_sample": round(s["dense_gflops_per_sample"], 4),
            "kept_fraction": {st["stage"]: round(st["kept_fraction"], 3) for st in s["stages"]
                              if st["kept_fraction"] < 1.0}}


def configure(net: torch.nn.Module, p: float | None, impl: str | None) -> torch.nn.Module:
    for m in net.modules():
        if p is not None and isinstance(m, TextQueriedAttention):
            m.p = p
        if impl is not None and isinstance(m, ImageCNN):
            m.sparse_impl = impl
    return net


def profile_forward(net: torch.nn.Module, batches: list, clock: Clock, device: torch.device, repeats: int) -> dict:
    """Forward seconds per sample of each part, eval mode: the image CNNs' stem + low blocks and each
    stage (selector, block and pooling, on whichever path runs), the rest of each branch, fusion."""
    net.eval()
    totals: dict[str, float] = defaultdict(float)
    wrapped = []

    def timed(name: str, fn):
        def run(*args, **kwargs):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = clock.now()  # a local start: the timed parts nest (model > branch > stage)
            out = fn(*args, **kwargs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            totals[name] += clock.now() - t0
            return out
        return run

    for modality, branch in net.branches.items():
        cnn = getattr(branch, "cnn", None)
        if cnn is not None:
            for part in ("stem", "low"):
                module = getattr(cnn, part)
                wrapped.append((module, "forward", module.forward))
                module.forward = timed(f"{modality}.{part}", module.forward)
            for i, stage in enumerate(cnn.stages):
                for method in ("forward", "forward_sites"):
                    wrapped.append((stage, method, getattr(stage, method)))
                    setattr(stage, method, timed(f"{modality}.stage{i + 1}", getattr(stage, method)))
        wrapped.append((branch, "forward", branch.forward))
        branch.forward = timed(f"{modality} (whole branch)", branch.forward)
    wrapped.append((net, "forward", net.forward))
    net.forward = timed("model (whole forward)", net.forward)
    rows = 0
    try:
        with torch.no_grad():
            for b in itertools.islice(itertools.cycle(batches), repeats):
                net(b.inputs)
                rows += len(b)
    finally:
        for obj, name, fn in wrapped:
            setattr(obj, name, fn)
    return {k: round(1000 * v / rows, 3) for k, v in sorted(totals.items())} | {"unit": "ms per sample"}


def inputs_and_models(args: argparse.Namespace, device: torch.device):
    """Examples, label count, and builders for FE2E and MESM with the run's (or registry) settings;
    the trained MESM state when ``--run`` is given."""
    if args.run:
        cfg = load_run_config(args.run / "config.yaml")
        run_info = json.loads((args.run / "run.json").read_text())
        featurizer = Featurizer.load(args.run / "featurizer.json")
        folder = Path(args.shards or run_info["shards"]["folder"])
        examples = list(ShardStream(folder, "test", featurizer.columns(), transform=featurizer))
        settings = dict(cfg.settings)
        trained = torch.load(args.run / "best.pt", map_location=device, weights_only=True)
        source = {"run": str(args.run), "shards": str(folder), "split": "test", "rows": len(examples),
                  "trained_p": settings.get("p")}
    else:
        folder = e2e_synthetic(Path("/tmp/emoprep-bench-mesm"), 64)
        featurizer, _, _, _ = fit(folder, "end_to_end")
        examples = list(ShardStream(folder, "train", featurizer.columns(), transform=featurizer))
        settings = dict(resolve_config("mesm").settings)
        trained = None
        source = {"synthetic": str(folder), "rows": len(examples)}
    n_classes = len(featurizer.label_names)

    def build(model: str) -> torch.nn.Module:
        entry = get_model(model)
        known = {f.name for f in dataclasses.fields(entry.settings)}
        torch.manual_seed(0)
        net = entry.build(featurizer.specs(), n_classes, entry.settings(**{k: v for k, v in settings.items() if k in known}),
                          ModelContext(featurizer.label_names))
        return net.to(device)

    return examples, build, trained, source, settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="a MESM run folder (trained attention, its settings and featuriser)")
    ap.add_argument("--shards", type=Path, help="the run's shard folder, if it moved")
    ap.add_argument("--ps", default="0.3,0.5,0.7,0.9")
    ap.add_argument("--lengths", default="demo,mosei")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2, help="training steps (and forwards x2) per block")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                    help="CPU timing: wall time, or the timing thread's CPU time (needs --threads 1; steady "
                         "figures on a machine other processes share)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device")
    if args.clock == "cpu" and (args.device != "cpu" or args.threads != 1):
        sys.exit("--clock cpu measures one thread's CPU time: it needs --device cpu --threads 1")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock = Clock(device, cpu_time=args.clock == "cpu")
    ps = [0.5] if args.quick else [float(p) for p in args.ps.split(",")]
    lengths = ["demo"] if args.quick else args.lengths.split(",")
    blocks = 1 if args.quick else args.blocks
    t_start = time.perf_counter()

    examples, build, trained, source, settings = inputs_and_models(args, device)
    fresh = {"fe2e": build("fe2e"), "mesm": build("mesm")}
    attentions = {"random": fresh["mesm"].state_dict()}
    if trained is not None:
        attentions["trained"] = trained
    configs = [("fe2e", None, None, None)]
    for attention in attentions:
        configs += [("mesm", attention, p, "gather") for p in ps]
        configs.append(("mesm", attention, 0.5, "masked"))

    results: dict = {"machine": machine(), "device": str(device), "threads": args.threads, "clock": args.clock,
                     "batch_size": BATCH,
                     "source": source, "settings": settings, "lengths": {k: LENGTHS[k] for k in lengths},
                     "configurations": [], "summary": {}, "profile": {}}
    for length in lengths:
        stretched = [stretch(e, LENGTHS[length]) for e in examples]
        batches = [b.to(device) for b in e2e_batches(stretched, BATCH, max(2, min(6, len(stretched) // BATCH)))]
        fe2e_row = None
        for model, attention, p, impl in configs:
            net = copy.deepcopy(fresh[model])
            if attention is not None:
                net.load_state_dict(attentions[attention])
            configure(net, p, impl)
            state = copy.deepcopy(net.state_dict())
            row = {"model": model, "length": length, "attention": attention, "p": p, "sparse_impl": impl,
                   "flops": flops_of(net, batches[0])}
            row["inference"] = time_inference(net, batches, clock, device, args.warmup, blocks, 2 * args.steps)
            net.load_state_dict(state)
            row["train"] = time_training(net, batches, clock, device, args.warmup, blocks, args.steps)
            if model == "fe2e":
                fe2e_row = row
            else:
                row["vs_fe2e"] = {
                    "inference_speedup": round(row["inference"]["samples_per_s"] / fe2e_row["inference"]["samples_per_s"], 3),
                    "train_speedup": round(row["train"]["samples_per_s"] / fe2e_row["train"]["samples_per_s"], 3),
                    "counted_flops_ratio": round(row["flops"]["counted_gflops_per_sample"]
                                                 / fe2e_row["flops"]["counted_gflops_per_sample"], 3),
                }
            results["configurations"].append(row)
            print(f"{length} {model} {attention or ''} p={p} {impl or ''}: train {row['train']['samples_per_s']}/s, "
                  f"inference {row['inference']['samples_per_s']}/s, counted {row['flops']['counted_gflops_per_sample']} "
                  f"GFLOPs" + (f", speed-up {row['vs_fe2e']}" if "vs_fe2e" in row else ""), file=sys.stderr)
            del net
        profiled = trained if trained is not None else attentions["random"]
        mesm = configure(copy.deepcopy(fresh["mesm"]), 0.5, "gather")
        mesm.load_state_dict(profiled)
        repeats = 2 if args.quick else 6
        results["profile"][length] = {
            "fe2e": profile_forward(copy.deepcopy(fresh["fe2e"]), batches, clock, device, repeats),
            "mesm_p0.5_gather": profile_forward(mesm, batches, clock, device, repeats),
            "mesm_attention": "trained" if trained is not None else "random",
        }
    results["summary"] = {
        f"{r['length']} {r['attention']} p={r['p']} {r['sparse_impl']}": r["vs_fe2e"]
        for r in results["configurations"] if "vs_fe2e" in r
    }
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("mesm-quick.json" if args.quick else "mesm.json")
    path.write_text(json.dumps(results, indent=1))
    print(json.dumps(results["summary"], indent=1))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
