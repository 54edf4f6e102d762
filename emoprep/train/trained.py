"""A finished run's model, loaded from its folder alone, to score rows the run never saw.

:func:`emoprep.train.run.load_run` rebuilds a whole trainer over the run's shards (to evaluate on
them); applying a run to new recordings needs none of that, and must work when the shards are gone.
:func:`load_trained` reads only the run folder: the resolved configuration, the fitted featuriser,
the best weights (``torch.load(weights_only=True)``: a run folder from elsewhere is untrusted input and
cannot execute code) and the validation thresholds from ``metrics.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SetupError
from ..format.names import BEST_WEIGHTS, FEATURIZER, METRICS, RUN_CONFIG, RUN_RECORD
from ..format.run_record import RunRecord, read_run_record
from .config import TrainConfig, load_run_config
from .inputs import Featurizer, collate
from .loop import predict
from .models import ModelContext, get_model

NEEDED = (RUN_CONFIG, RUN_RECORD, FEATURIZER, BEST_WEIGHTS, METRICS)
"""What a run folder must hold to be applied: configuration, record, featuriser, weights, thresholds."""


@dataclass
class TrainedModel:
    """A run's best weights in eval mode, with everything needed to turn shard rows into decisions."""

    folder: Path
    config: TrainConfig
    record: RunRecord
    featurizer: Featurizer
    net: nn.Module
    thresholds: np.ndarray
    """Per class, chosen on the validation split during training (``metrics.json``)."""
    device: torch.device
    source: str | None = None
    """Where the run is, as records name it, when ``folder`` is only a local copy of it (a run folder
    on object storage); None: ``folder`` itself."""

    @property
    def where(self) -> str:
        """The run folder as records name it: its URL, or the absolute local path."""
        return self.source or str(Path(self.folder).resolve())

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.featurizer.label_names

    def probabilities(self, examples: list[tuple], batch_size: int | None = None) -> np.ndarray:
        """Sigmoid probabilities ``(len(examples), C)`` of featurised examples, in their order."""
        if not examples:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        size = batch_size or self.config.optim.batch_size
        batches = [collate(examples[i : i + size]) for i in range(0, len(examples), size)]
        return predict(self.net, batches, self.device)["probs"]


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The state dict in ``path``, loaded with ``weights_only=True``; a file that is not plain tensors
    (tampered, or not written by emoprep) is refused with a :class:`SetupError`, never loaded another way."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise SetupError(
            f"{path} cannot be loaded as plain weights (torch.load with weights_only=True refused it: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); the checkpoint is damaged or was "
            "not written by emoprep, and it is never loaded in a way that could run code: retrain the run"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SetupError(f"{path} does not hold a model's weights (a mapping of tensor names to tensors)")
    return state


def load_trained(folder: str | Path, device: str = "cpu") -> TrainedModel:
    """The finished run in ``folder``, ready to score; a :class:`SetupError` names what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SetupError(f"{folder}: no such run folder (give the --out folder of `emoprep train`)")
    missing = [name for name in NEEDED if not (folder / name).is_file()]
    if missing:
        raise SetupError(f"{folder} is not a finished training run: {', '.join(missing)} missing "
                         "(finish it with `emoprep train ... --resume`, or give another run folder)")
    cfg = load_run_config(folder / RUN_CONFIG)
    record = read_run_record(folder)
    featurizer = Featurizer.load(folder / FEATURIZER)
    thresholds = np.asarray(json.loads((folder / METRICS).read_text())["thresholds"], dtype=np.float64)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    state = load_checkpoint(folder / BEST_WEIGHTS, dev)
    entry = get_model(cfg.model)
    # EmoEmbs keeps its label-name vectors as a parameter: their trained values come with the weights,
    # so the shards they were first looked up in are not needed.
    context = ModelContext(featurizer.label_names, state.get("text_emotions"))
    net = entry.build(featurizer.specs(), len(featurizer.label_names), cfg.settings, context)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise SetupError(f"{folder / BEST_WEIGHTS} does not fit the run's {cfg.model} model ({str(exc).splitlines()[0]}): "
                         "the weights and config.yaml come from different runs") from None
    net.to(dev).eval()
    return TrainedModel(folder, cfg, record, featurizer, net, thresholds, dev)
