"""A training run and its folder, the unit of record.

::

    RUN_RECORD/
      config.yaml          the resolved configuration (every default filled in)
      run.json             emoprep/torch versions, the shards' folder, config hash and labels, the
                           input each branch used and why, the dataset-dependent settings chosen and
                           why (``chosen``), the preset, each parameter group's lr (``param_groups``),
                           task, device, processes, status, and the shards' extraction
                           configuration (``extraction``: what ``emoprep predict`` extracts new media with)
      featurizer.json      vocabulary and normalisation statistics fitted on the training split
      history.jsonl        one line per epoch: losses, rows trained on (all ranks), validation average F1, seconds
                           (wall) and cpu_seconds (this process's CPU time, all its threads: comparable
                           between runs on a machine that other work shares)
      best.pt              the weights of the epoch with the best validation average F1
      last.pt              weights, optimiser and every rank's RNG states after the last finished epoch (--resume)
      metrics.json         per split and class: Acc/WAcc, F1, precision, recall, threshold, TP/FP/FN/TN;
                           averages; the chosen epoch; the all-positive baseline
      predictions.parquet  per utterance of valid and test: probability, prediction, target per class

The protocol is the paper's: BCE with logits and ``pos_weight`` = negatives/positives per class of
the training split; thresholds per class chosen on validation F1 and applied to test; the epoch
chosen and early stopping on validation average F1.  Metrics are a pure function of the
predictions file, so anyone can recompute them.  Checkpoints are loaded with
``torch.load(weights_only=True)``: a run folder from elsewhere cannot execute code.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from ..errors import SetupError
from ..format.files import write_json_atomic
from ..format.manifest import Manifest, StorageOptions, read_manifest, read_manifest_or_none
from ..format.names import (
    BEST_WEIGHTS,
    EVALUATIONS,
    FEATURIZER,
    HISTORY,
    LAST_STATE,
    METRICS,
    PREDICTIONS,
    RUN_CONFIG,
    RUN_RECORD,
    evaluation_name,
)
from ..format.run_record import RunRecord, ShardsUsed, read_run_record, write_run_record
from ..format.storage import Folder
from ..format.working_copy import WorkingCopy, working_copy
from ..version import __version__
from . import albert
from . import metrics as M
from .batch import Batch
from .config import TrainConfig, load_run_config, resolve
from .data import ShardStream
from .distributed import Processes, barrier, gather, share_cpu, start, stop
from .flops import count_flops, flops_summary
from .inputs import Featurizer, choose_branches, collate
from .labels import label_vectors
from .loop import batches_per_epoch, make_loader, predict, train_epoch
from .models import ModelContext, get_model
from .models.fe2e import AlbertBranch
from .models.sparse import resolve_impl
from .precision import grad_scaler, resolve_amp
from .progress import TrainingProgress

@dataclass(frozen=True)
class Shards:
    folder: Folder
    """A local folder or a prefix on object storage (with its storage options)."""
    manifest: Manifest

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.manifest.label_names

    @property
    def splits(self) -> set[str]:
        return self.manifest.splits

    @property
    def where(self) -> str:
        """Where the shards are, as records keep it: the absolute local path, or the URL (no credential)."""
        return self.folder.url if self.folder.remote else str(Path(self.folder.location).resolve())

    def used(self) -> ShardsUsed:
        """How ``run.json`` records these shards."""
        m = self.manifest
        return ShardsUsed(self.where, m.config_hash, m.dataset, m.emoprep_version,
                          m.label_names, m.counts.rows_per_split)


def open_shards(location: str | Path | Folder, storage_options: StorageOptions = None) -> Shards:
    """A finished shard folder (local or a URL) with labels and the splits training needs, or a
    SetupError saying why not."""
    folder = Folder.of(location, storage_options)
    try:
        manifest = read_manifest(folder)
    except FileNotFoundError as exc:
        raise SetupError(str(exc)) from None
    shards = Shards(folder, manifest)
    if not shards.label_names or not manifest.counts.present("emotions"):
        raise SetupError(f"{folder} holds no emotion labels (column 'emotions' is null): it cannot be trained on")
    missing = {"train", "valid"} - shards.splits
    if missing:
        raise SetupError(f"{folder} has no {' or '.join(sorted(missing))} split; training needs train and valid (test to report)")
    return shards


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Predictions of every rank as one set, in utterance-id order (independent of the deal).  Each
    utterance must come exactly once: a repeat means ranks or loader workers read overlapping rows."""
    parts = [p for p in parts if len(p["ids"])]
    if not parts:
        return {"ids": [], "splits": [], "probs": np.zeros((0, 0)), "targets": np.zeros((0, 0)), "loss": float("nan")}
    ids = [i for p in parts for i in p["ids"]]
    splits = [s for p in parts for s in p["splits"]]
    order = sorted(range(len(ids)), key=ids.__getitem__)
    repeated = [ids[a] for a, b in zip(order, order[1:]) if ids[a] == ids[b]]
    if repeated:
        first = repeated[0]
        raise RuntimeError(
            f"utterance {first!r} was predicted {ids.count(first)} times when the {len(parts)} process(es)' predictions "
            f"were merged ({len(set(repeated))} utterance(s) repeated): ranks or loader workers read overlapping rows "
            "(each ShardStream must know its rank and world size; see emoprep.train.data), or the split holds it twice"
        )
    return {
        "ids": [ids[i] for i in order],
        "splits": [splits[i] for i in order],
        "probs": np.concatenate([p["probs"] for p in parts])[order],
        "targets": np.concatenate([p["targets"] for p in parts])[order],
        "loss": sum(p["loss_sum"] for p in parts) / max(len(ids), 1),
    }


PRETRAINED_TEXT = "pretrained text encoder (ALBERT)"
REST = "rest"


def _param_groups(net: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """The optimiser's groups, each named: a pretrained text encoder's own weights (ALBERT's, in
    :class:`AlbertBranch`) at ``lr * text_lr_scale``, as the paper fine-tunes ALBERT at lr/10; the
    rest at ``lr``.  The rest includes everything that starts from random weights: the projection
    and head on top of ALBERT (the authors' code also put its text head at lr/10; a layer trained
    from scratch only learns slower there), a text transformer over GloVe or learned embeddings, MESM's
    query source, the baselines' text branches."""
    pretrained = {id(p) for m in net.modules() if isinstance(m, AlbertBranch) for p in m.albert.parameters()}
    params = list(net.parameters())
    groups = [{"name": REST, "params": [p for p in params if id(p) not in pretrained], "lr": cfg.optim.lr}]
    if pretrained:
        groups.append({"name": PRETRAINED_TEXT, "params": [p for p in params if id(p) in pretrained],
                       "lr": cfg.optim.lr * cfg.optim.text_lr_scale})
    return groups


def param_groups_record(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """``run.json``'s ``param_groups``: each group's name, learning rate and number of parameters."""
    return [{"name": g.get("name", f"group {i}"), "lr": float(g["lr"]), "parameters": sum(p.numel() for p in g["params"])}
            for i, g in enumerate(optimizer.param_groups)]


class Trainer:
    """Everything one run needs, built once: featuriser, model, optimiser, loss, loaders."""

    def __init__(self, cfg: TrainConfig, shards: Shards, featurizer: Featurizer, pos_weight: np.ndarray,
                 task: str, procs: Processes, context: ModelContext) -> None:
        self.cfg, self.shards, self.featurizer, self.task, self.procs = cfg, shards, featurizer, task, procs
        _seed_everything(cfg.seed)
        entry = get_model(cfg.model)
        net = entry.build(featurizer.specs(), len(shards.label_names), cfg.settings, context)
        self.net = net.to(procs.device)
        self.model: nn.Module = self.net
        if procs.distributed:
            ids = [procs.device.index] if procs.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.optimizer = torch.optim.Adam(_param_groups(self.net, cfg), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        self._loaders: dict[str, Any] = {}
        """Prediction loaders by split, made once (their workers persist across epochs)."""
        self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.as_tensor(pos_weight, dtype=torch.float32, device=procs.device))
        self.amp = resolve_amp(cfg.optim.amp, procs.device)
        self.scaler = grad_scaler(self.amp, procs.device)
        """fp16's loss scale carries over from step to step (and into ``last.pt``); a no-op otherwise."""

    def compute_record(self) -> dict[str, Any]:
        """How this run computes, as resolved for its device (``run.json``): the mixed-precision
        mode and, for MESM, the sparse stages' implementation."""
        record = {"amp": self.amp}
        settings = self.cfg.settings
        if hasattr(settings, "sparse_impl"):
            record["sparse_impl"] = resolve_impl(settings.sparse_impl, self.procs.device, settings.p)
        return record

    def stream(self, split: str, shuffle: bool = False, whole: bool = False) -> ShardStream:
        """This rank's share of ``split`` (``whole``: all of it).  The rank is given, not looked up in
        the loader workers, which have no process group when started by spawn or forkserver."""
        rank, world = (0, 1) if whole else (self.procs.rank, self.procs.world_size)
        return ShardStream(self.shards.folder, split, self.featurizer.columns(), transform=self.featurizer,
                           shuffle=shuffle, seed=self.cfg.seed, buffer_size=self.cfg.data.shuffle_buffer,
                           rank=rank, world_size=world)

    def loader(self, stream: ShardStream, persistent: bool = False) -> DataLoader:
        return make_loader(stream, self.cfg.optim.batch_size, self.cfg.data.workers, persistent=persistent,
                           start_method=self.cfg.data.start_method)

    def batch_of(self, split: str, ids: list[str] | None = None, limit: int = 8) -> Batch:
        """The labelled utterances ``ids`` of ``split`` (or its first ``limit``) as one batch, on the device."""
        examples = []
        for example in self.stream(split, whole=True):
            if ids is None or example[0] in ids:
                examples.append(example)
            if len(examples) == (len(ids) if ids else limit):
                break
        if not examples:
            among = f"among {', '.join(ids)} " if ids else ""
            raise SetupError(f"no labelled utterance {among}in the {split} split of {self.shards.folder}")
        return collate(examples).to(self.procs.device)

    def predict_split(self, split: str) -> dict[str, Any]:
        if split not in self._loaders:
            self._loaders[split] = self.loader(self.stream(split), persistent=True)
        loader = self._loaders[split]
        merged = _merge(gather(predict(self.model, loader, self.procs.device, self.loss_fn, self.amp), self.procs))
        if not merged["ids"]:
            raise SetupError(f"the {split} split of {self.shards.folder} has no labelled rows: it cannot be scored")
        return merged


def _check_run_folder(work: WorkingCopy, resume: bool) -> None:
    if resume:
        if not (work.path / RUN_CONFIG).is_file():
            raise SetupError(f"--resume: {work.url} is not a run folder (no {RUN_CONFIG}); start it without --resume")
        return
    if work.holds_anything():
        raise SetupError(f"{work.url} already holds a run: continue it with --resume, or choose another --out")


def _context(cfg: TrainConfig, shards: Shards, featurizer: Featurizer) -> tuple[ModelContext, dict[str, Any]]:
    """Label-name vectors for models that want them (EmoEmbs), and a note of where they came from."""
    vectors, note = None, None
    if cfg.model == "emoembs" and "text" in featurizer.branches:
        vectors, note = label_vectors(shards.folder, shards.label_names, featurizer.branches["text"].column)
    return ModelContext(shards.label_names, vectors), ({"label_vectors": note} if note else {})


def _dataset_of(folder: str | Path, storage_options: StorageOptions = None) -> str | None:
    """The shards' dataset (``manifest.json``), None when the manifest cannot be read: then the
    configuration is still checked in full, and :func:`open_shards` says what is wrong with the folder."""
    manifest = read_manifest_or_none(folder, storage_options)
    return manifest.dataset if manifest is not None else None


def train(model: str, shards_dir: str | Path, out: str | Path, *, config_file: Path | None = None,
          sets: dict[str, Any] | None = None, seed: int | None = None, device: str = "auto", resume: bool = False,
          quiet: bool = False, preset: str | None = None, storage_options: StorageOptions = None) -> dict[str, Any]:
    """Train ``model`` on ``shards_dir`` into the run folder ``out``; returns ``metrics.json``'s content.

    ``preset`` (``"paper"``) starts from the paper's settings for the shards' dataset
    (:func:`emoprep.train.config.preset_file`).  The configuration is resolved and checked before
    any shard is read; the dataset-dependent choices are recorded in ``run.json`` (``chosen``).
    ``shards_dir`` and ``out`` may be URLs (``s3://bucket/prefix``), with ``storage_options`` for
    their store: a run folder there is worked on in a local copy whose files are put back after
    every epoch (:mod:`emoprep.format.working_copy`), so ``--resume`` continues it from anywhere."""
    procs = start(device)
    progress = TrainingProgress(enabled=procs.main and not quiet)
    try:
        with working_copy(out, storage_options, pull=resume) as work:
            return _train_into(work, model, shards_dir, config_file=config_file, sets=sets, seed=seed, resume=resume,
                               preset=preset, storage_options=storage_options, procs=procs, progress=progress)
    finally:
        stop()


def _train_into(work: WorkingCopy, model: str, shards_dir: str | Path, *, config_file: Path | None,
                sets: dict[str, Any] | None, seed: int | None, resume: bool, preset: str | None,
                storage_options: StorageOptions, procs: Processes, progress: TrainingProgress) -> dict[str, Any]:
    """:func:`train` inside its working copy ``work`` (the run folder itself when it is local)."""
    out = work.path
    _check_run_folder(work, resume)
    barrier(procs)  # every rank has looked before the first one writes
    if resume:
        if sets or config_file is not None or seed is not None or preset is not None:
            raise SetupError("--resume continues with the run's saved config.yaml; drop --preset, --config, --set and --seed")
        cfg = load_run_config(out / RUN_CONFIG)
        if cfg.model != model:
            raise SetupError(f"{work.url} is a {cfg.model} run, not {model}")
        if (out / METRICS).is_file():
            progress.stage(f"{work.url} is already complete; its metrics are in {work.shown(METRICS)}")
            return json.loads((out / METRICS).read_text())
        notes: dict[str, Any] = {}  # run.json already holds them
    else:
        # A preset is picked by the shards' dataset, so their folder must be readable first; otherwise
        # the configuration is checked before the folder is looked at.
        dataset = (open_shards(shards_dir, storage_options).manifest.dataset if preset
                   else _dataset_of(shards_dir, storage_options))
        resolved = resolve(model, config_file, sets, seed, dataset=dataset, preset=preset)
        cfg = resolved.config
        notes = {"chosen": resolved.chosen, **({"preset": resolved.preset} if resolved.preset else {})}
        for key, choice in resolved.chosen.items():
            progress.stage(f"{key} = {choice['value']} ({choice['reason']})")
    shards = open_shards(shards_dir, storage_options)
    share_cpu(procs, cfg.data.workers)
    trainer, run_info = _prepare(cfg, shards, out, procs, progress, resume, notes)
    if procs.main:
        work.push()
    return _fit_and_evaluate(trainer, work, run_info, progress)


def _prepare(cfg: TrainConfig, shards: Shards, out: Path, procs: Processes, progress: TrainingProgress,
             resume: bool, notes: dict[str, Any] | None = None) -> tuple[Trainer, RunRecord]:
    """Choose inputs, fit the featuriser on train (or load it on resume), build the trainer, write the
    run's records (``notes``: how the configuration's dataset-dependent values were chosen)."""
    if resume:
        run_info = read_run_record(out)
        if run_info.shards.config_hash != shards.manifest.config_hash:
            raise SetupError(f"--resume: {shards.folder} is not the shard folder this run started on "
                             f"(config hash {shards.manifest.config_hash} != {run_info.shards.config_hash})")
        featurizer = Featurizer.load(out / FEATURIZER)
        pos_weight = np.asarray(run_info.pos_weight, dtype=np.float32)
        task = run_info.task
    else:
        text_albert = albert.text_choice(cfg.settings, cfg.modalities)  # checks library and folder first
        branches = choose_branches(shards.manifest, cfg.modalities, vars(cfg.inputs), get_model(cfg.model).family,
                                   text_albert)
        for m, b in branches.items():
            progress.stage(f"{m}: {b.column} ({b.reason})")
        progress.stage("fitting the featuriser on the training split (vocabulary, feature statistics)")
        featurizer, train_targets = Featurizer.fit(shards.folder, branches, shards.label_names, cfg.data.max_len,
                                                   cfg.data.min_token_count, cfg.data.lowercase_tokens)
        pos_weight = M.pos_weight(train_targets, shards.label_names)
        task = M.task_of(train_targets) if cfg.task == "auto" else cfg.task
        run_info = RunRecord(
            emoprep_version=__version__,
            torch_version=torch.__version__,
            python=platform.python_version(),
            model=cfg.model,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            shards=shards.used(),
            inputs={m: {"column": b.column, "reason": b.reason} for m, b in featurizer.branches.items()},
            vocabulary_size=len(featurizer.vocab) or None,
            task=task,
            train_rows_labelled=len(train_targets),
            pos_weight=tuple(float(w) for w in pos_weight),
            device=str(procs.device),
            processes=procs.world_size,
            extraction=shards.manifest.config,
            **(notes or {}),
        )
    context, note = _context(cfg, shards, featurizer)
    trainer = Trainer(cfg, shards, featurizer, pos_weight, task, procs, context)
    run_info = dataclasses.replace(run_info, **note, parameters=sum(p.numel() for p in trainer.net.parameters()),
                                   param_groups=param_groups_record(trainer.optimizer), compute=trainer.compute_record())
    if procs.main and not resume:
        out.mkdir(parents=True, exist_ok=True)
        (out / RUN_CONFIG).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        featurizer.save(out / FEATURIZER)
        write_run_record(out, run_info)
    barrier(procs)
    return trainer, run_info


def _rng_state(device: torch.device) -> dict[str, Any]:
    """This process's random number generators, as tensors and plain values (``weights_only`` loads
    them): torch's CPU generator, the CUDA generator of ``device`` when it is a GPU, numpy's and
    Python's global ones."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss_next},
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Undo :func:`_rng_state`: every generator it saved continues where it was."""
    torch.set_rng_state(state["torch"])
    n, p = state["numpy"], state["python"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class _Counted:
    """A loader's batches, counting their rows (each epoch's record says how many were trained on)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader, self.rows = loader, 0

    def __iter__(self):
        for batch in self.loader:
            self.rows += len(batch)
            yield batch


def _save_last(trainer: Trainer, path: Path, state: dict[str, Any], rng: list[dict[str, Any]]) -> None:
    """``rng``: every rank's generators, in rank order (each rank draws its own dropout masks)."""
    blob = {"model": trainer.net.state_dict(), "optimizer": trainer.optimizer.state_dict(), "rng": rng,
            "scaler": trainer.scaler.state_dict(), **state}
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def _fit_and_evaluate(trainer: Trainer, work: WorkingCopy, run_info: RunRecord, progress: TrainingProgress) -> dict[str, Any]:
    """The epochs (from ``last.pt`` when resuming), each one's files put to the run folder when it ends."""
    cfg, procs, out = trainer.cfg, trainer.procs, work.path
    state = {"epoch": 0, "best_f1": -1.0, "best_epoch": 0, "bad_epochs": 0}
    if (out / LAST_STATE).is_file():
        # on the CPU: RNG states must stay there; weights and optimiser state are copied to the device
        blob = torch.load(out / LAST_STATE, map_location="cpu", weights_only=True)
        trainer.net.load_state_dict(blob["model"])
        try:
            trainer.optimizer.load_state_dict(blob["optimizer"])
        except ValueError as exc:  # e.g. an older emoprep put a text branch trained from scratch in its own group
            raise SetupError(f"--resume: the optimiser state in {work.shown(LAST_STATE)} does not fit this emoprep's parameter "
                             f"groups ({exc}); the run was started by another version: finish it with that "
                             "version, or start a new run") from None
        if blob.get("scaler"):
            trainer.scaler.load_state_dict(blob["scaler"])
        if "rng" in blob:
            if len(blob["rng"]) != procs.world_size:
                progress.stage(f"note: the run had {len(blob['rng'])} process(es), this has {procs.world_size}: "
                             "the result will differ from an uninterrupted run's")
            _set_rng_state(blob["rng"][procs.rank % len(blob["rng"])], procs.device)
        else:  # last.pt of an earlier emoprep: the CPU generator only
            torch.set_rng_state(blob["torch_rng"])
        state = {k: blob[k] for k in state}
        progress.stage(f"resuming after epoch {state['epoch']} (best so far: epoch {state['best_epoch']}, "
                     f"valid avg F1 {state['best_f1']:.4f})")
    train_stream = trainer.stream("train", shuffle=True)
    for epoch in range(state["epoch"] + 1, cfg.optim.epochs + 1):
        if cfg.optim.patience and state["bad_epochs"] >= cfg.optim.patience:
            progress.stage(f"early stop: no better validation average F1 for {cfg.optim.patience} epochs")
            break
        t0, c0 = time.perf_counter(), time.process_time()
        train_stream.set_epoch(epoch)
        loader = _Counted(trainer.loader(train_stream))  # made per epoch: its generator is seeded by the epoch
        batches = batches_per_epoch(train_stream, cfg.optim.batch_size, cfg.data.workers)
        with progress.epoch(epoch, cfg.optim.epochs, batches) as on_step:
            loss = train_epoch(trainer.model, loader, trainer.optimizer, trainer.loss_fn, cfg.optim.grad_clip,
                               procs.device, on_step, trainer.amp, trainer.scaler)
        losses, rows = zip(*gather((loss, loader.rows), procs))
        valid = trainer.predict_split("valid")
        thresholds = M.choose_thresholds(valid["probs"], valid["targets"])
        f1 = M.compute_metrics(valid["probs"], valid["targets"], thresholds, trainer.shards.label_names, trainer.task)["average"]["f1"]
        better = f1 > state["best_f1"]
        state = {"epoch": epoch, "best_f1": max(f1, state["best_f1"]), "best_epoch": epoch if better else state["best_epoch"],
                 "bad_epochs": 0 if better else state["bad_epochs"] + 1}
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "train_rows": sum(rows), "valid_loss": valid["loss"],
                  "valid_f1": f1, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
        rng = gather(_rng_state(procs.device), procs)  # every rank's, saved by the first
        if procs.main:
            if better:
                torch.save(trainer.net.state_dict(), out / BEST_WEIGHTS)
            with open(out / HISTORY, "a") as f:
                f.write(json.dumps(record) + "\n")
            _save_last(trainer, out / LAST_STATE, state, rng)
            work.push()
        barrier(procs)
        progress.epoch_done(record, better)
    return _final_evaluation(trainer, work, run_info, state, progress)


def _final_evaluation(trainer: Trainer, work: WorkingCopy, run_info: RunRecord, state: dict[str, Any],
                      progress: TrainingProgress) -> dict[str, Any]:
    """Best weights -> thresholds on valid -> metrics of valid and test, predictions file, metrics file."""
    procs, labels, out = trainer.procs, trainer.shards.label_names, work.path
    if not procs.main:
        work.fetch(BEST_WEIGHTS)  # the first process put it (a run folder on object storage)
    trainer.net.load_state_dict(torch.load(out / BEST_WEIGHTS, map_location=procs.device, weights_only=True))
    preds = {split: trainer.predict_split(split) for split in ("valid", "test") if split in trainer.shards.splits}
    thresholds = M.choose_thresholds(preds["valid"]["probs"], preds["valid"]["targets"])
    result: dict[str, Any] = {"model": trainer.cfg.model, "chosen_epoch": state["best_epoch"], "epochs_run": state["epoch"],
                              "task": trainer.task, "label_names": list(labels), "thresholds": [float(t) for t in thresholds]}
    for split, p in preds.items():
        result[split] = M.compute_metrics(p["probs"], p["targets"], thresholds, labels, trainer.task)
        result[split]["all_positive"] = M.all_positive_metrics(p["targets"], labels, trainer.task)["average"]
    if procs.main and get_model(trainer.cfg.model).family == "end_to_end":
        result["flops"] = _counted_flops(trainer, "test" if "test" in preds else "valid")
        progress.stage(f"counted FLOPs: {result['flops']['counted_gflops_per_sample']:.3f} GFLOPs per utterance "
                     f"(dense {result['flops']['dense_gflops_per_sample']:.3f}) on {result['flops']['rows']} {result['flops']['split']} utterances")
    if procs.main:
        write_predictions(out / PREDICTIONS, preds, thresholds, labels)
        write_json_atomic(out / METRICS, result)
        write_run_record(out, dataclasses.replace(run_info, status="complete",
                                                  finished=datetime.now(timezone.utc).isoformat(timespec="seconds")))
        work.push()
        for split in preds:
            progress.metrics_table(result[split], f"{split} ({len(preds[split]['ids'])} utterances, epoch {state['best_epoch']})",
                                 {"average": result[split]["all_positive"]})
        progress.stage(f"run folder: {work.url}")
    barrier(procs)
    return result


def _counted_flops(trainer: Trainer, split: str, rows: int = 8) -> dict[str, Any]:
    """FLOPs per utterance of the best weights, counted on the first ``rows`` utterances of ``split``."""
    return {"split": split, **flops_summary(count_flops(trainer.net, trainer.batch_of(split, limit=rows).inputs))}


def write_predictions(path: Path, preds: dict[str, dict[str, Any]], thresholds: np.ndarray, labels: tuple[str, ...]) -> None:
    """One row per utterance: id, split, and ``prob_``/``pred_``/``true_`` per class."""
    tables = []
    for split, p in preds.items():
        columns: dict[str, Any] = {"utterance_id": p["ids"], "split": [split] * len(p["ids"])}
        predicted = M.predict(p["probs"], thresholds)
        for k, name in enumerate(labels):
            columns[f"prob_{name}"] = pa.array(p["probs"][:, k], type=pa.float32())
            columns[f"pred_{name}"] = pa.array(predicted[:, k].astype(np.int8))
            columns[f"true_{name}"] = pa.array(p["targets"][:, k].astype(np.int8))
        tables.append(pa.table(columns))
    table = pa.concat_tables(tables)
    meta = {b"emoprep.label_names": json.dumps(list(labels)).encode(),
            b"emoprep.thresholds": json.dumps([float(t) for t in thresholds]).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)


def load_run(run_dir: Path, shards_dir: str | Path | None = None, device: str = "cpu",
             need: tuple[str, ...] = (RUN_CONFIG, RUN_RECORD, FEATURIZER, BEST_WEIGHTS), *,
             storage_options: StorageOptions = None, shown: str | None = None) -> tuple[Trainer, RunRecord]:
    """A finished run's trainer with its best weights (in eval mode) over its shards, or over other
    shards with the same labels, and its ``run.json``; ``need`` names the files that must exist.

    ``run_dir`` is a local folder (a run on object storage is read through its
    :func:`~emoprep.format.working_copy.working_copy`, ``shown`` then names it in messages); the
    shards may be a URL, read with ``storage_options``."""
    run_dir = Path(run_dir)
    for name in need:
        if not (run_dir / name).is_file():
            raise SetupError(f"{shown or run_dir} is not a finished run: {name} is missing "
                             "(finish it with `emoprep train ... --resume`)")
    cfg = load_run_config(run_dir / RUN_CONFIG)
    run_info = read_run_record(run_dir)
    shards = open_shards(shards_dir or run_info.shards.folder, storage_options)
    featurizer = Featurizer.load(run_dir / FEATURIZER)
    if shards.label_names != featurizer.label_names:
        raise SetupError(f"labels differ: the run learned {list(featurizer.label_names)}, the shards hold {list(shards.label_names)}")
    procs = start(device)
    trainer = Trainer(cfg, shards, featurizer, np.asarray(run_info.pos_weight, dtype=np.float32), run_info.task, procs,
                      _context(cfg, shards, featurizer)[0])
    trainer.net.load_state_dict(torch.load(run_dir / BEST_WEIGHTS, map_location=procs.device, weights_only=True))
    trainer.net.eval()
    return trainer, run_info


def evaluate(run_dir: str | Path, shards_dir: str | Path | None = None, split: str = "test", device: str = "cpu",
             quiet: bool = False, storage_options: StorageOptions = None) -> dict[str, Any]:
    """Score a finished run's best weights on ``split`` of its shards (or of other shards with the
    same labels), with the thresholds chosen on validation during training.  The run folder and the
    shards may be URLs (``storage_options`` for their store); the evaluation is put into the run
    folder's ``evaluations/``."""
    with working_copy(run_dir, storage_options) as work:
        result = _evaluate_in(work, shards_dir, split, device, quiet, storage_options)
        work.push()
    return result


def _evaluate_in(work: WorkingCopy, shards_dir: str | Path | None, split: str, device: str, quiet: bool,
                 storage_options: StorageOptions) -> dict[str, Any]:
    run_dir = work.path
    trainer, run_info = load_run(run_dir, shards_dir, device, need=(RUN_CONFIG, RUN_RECORD, FEATURIZER, BEST_WEIGHTS, METRICS),
                                 storage_options=storage_options, shown=work.url)
    shards = trainer.shards
    if split not in shards.splits:
        raise SetupError(f"{shards.folder} has no {split!r} split (it has {', '.join(sorted(shards.splits))})")
    progress = TrainingProgress(enabled=not quiet)
    thresholds = np.asarray(json.loads((run_dir / METRICS).read_text())["thresholds"])
    p = trainer.predict_split(split)
    result = M.compute_metrics(p["probs"], p["targets"], thresholds, shards.label_names, trainer.task)
    config_hash = shards.manifest.config_hash
    result["shards"] = {"folder": shards.where, "config_hash": config_hash, "split": split}
    if config_hash != run_info.shards.config_hash:
        progress.stage(f"note: these shards (config {config_hash}) are not the ones the run trained on "
                     f"({run_info.shards.config_hash})")
    evaluations = run_dir / EVALUATIONS
    evaluations.mkdir(exist_ok=True)
    write_json_atomic(evaluations / evaluation_name(split, config_hash), result)
    progress.metrics_table(result, f"{split} of {shards.folder} ({len(p['ids'])} utterances)",
                         {"average": M.all_positive_metrics(p["targets"], shards.label_names, trainer.task)["average"]})
    return result
