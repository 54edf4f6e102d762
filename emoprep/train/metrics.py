"""The MESM paper's evaluation protocol, as pure functions of ``(probs, targets, thresholds)``.

Anyone holding a predictions file (sigmoid probabilities, targets, chosen thresholds) can recompute
every number the trainer reports: nothing here reads a model, a run folder or a random state.
numpy only, so a report can be checked without torch installed.

Conventions, kept the same everywhere in this module:

- **Prediction rule**: class ``c`` is predicted when ``prob > threshold`` (strictly greater), as in
  the authors' ``eval_iemocap``.  A probability equal to the threshold is negative.
- **Threshold choice**: per class, the grid value with the highest validation F1; ties go to the
  lowest threshold (the authors' ``argmax`` over an ascending grid does the same).  A class with no
  validation positives has F1 0 everywhere and therefore gets the lowest grid value.
- **Zero divisions** never yield NaN, so reports stay valid JSON: precision is 0 when nothing is
  predicted, recall is 0 when there are no positives, and F1 = 2TP / (2TP + FP + FN) is 0 when there
  are neither predicted nor true positives.
- **Weighted accuracy** ``WAcc = (TP * N / P + TN) / (2N)`` is the mean of recall and specificity.
  When a class has no positives (P = 0) it is the specificity TN / N; with no negatives (N = 0) it is
  the recall TP / P: the mean of the rates that exist.  In both cases it equals plain accuracy.
- **F1 is the positive-class F1** for both datasets, as the authors' code computed it for both.
  Their ``main.py`` picks the trainer with ``if args['dataset'] == 'iemocap' or 'mosei':``, which is
  always true (a non-empty string), so MOSEI also went through ``IemocapTrainer`` and
  ``eval_iemocap``: per-class thresholds chosen on validation F1, sklearn's binary (positive-class)
  F1, and *plain* accuracy (the ``weighted_acc`` call there is commented out).  Their
  ``eval_mosei_emo``, with a fixed threshold, ``weighted_acc`` and sklearn's support-weighted F1 over
  {0, 1} (which counts the dominant negatives), is never called.  emoprep reports the paper's WAcc
  for multi-label data (MOSEI) as the paper's text defines it, with plain accuracy beside it.
- **Averages** are unweighted means over classes, as the paper reports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Task = Literal["singlelabel", "multilabel"]

THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
"""The paper's threshold grid 0.05, 0.10, ..., 0.95, rounded so that 0.15 is exactly ``0.15``."""

HEADLINE: dict[str, str] = {"singlelabel": "acc", "multilabel": "wacc"}
"""The accuracy the paper reports per task: plain accuracy on IEMOCAP, weighted accuracy on MOSEI,
where negatives dominate every class and plain accuracy rewards predicting nothing."""


@dataclass(frozen=True)
class Confusion:
    """Per-class counts of a binary decision per (row, class); every array has shape ``(C,)``."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    @property
    def positives(self) -> np.ndarray:
        """P: rows where the class is present."""
        return self.tp + self.fn

    @property
    def negatives(self) -> np.ndarray:
        """N: rows where the class is absent."""
        return self.fp + self.tn


def _binary_matrix(a: np.ndarray, what: str) -> np.ndarray:
    """``a`` as a non-empty ``(N, C)`` bool matrix; refuses anything but 0/1 values, so that
    probabilities or soft labels passed by mistake fail loudly instead of being counted."""
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty (rows, classes) matrix, got shape {a.shape}")
    if not np.isin(a, (0, 1)).all():
        raise ValueError(f"{what} must hold only 0/1 values")
    return a.astype(bool)


def _probabilities(probs: np.ndarray) -> np.ndarray:
    """``probs`` as a non-empty ``(N, C)`` float matrix in [0, 1]; logits are refused because a
    threshold grid over (0, 1) means nothing for them."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"probs must be a non-empty (rows, classes) matrix, got shape {p.shape}")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("probs must be finite probabilities in [0, 1] (apply a sigmoid to logits first)")
    return p


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` per class, 0 where ``den`` is 0 (the zero-division convention of this module)."""
    num = np.asarray(num, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=np.asarray(den) != 0)


def pos_weight(targets: np.ndarray, label_names: Sequence[str] | None = None) -> np.ndarray:
    """``negatives / positives`` per class of the training targets, for ``BCEWithLogitsLoss``.

    Balances each class's rare positives against its negatives, as the authors did.  A class with no
    training positives cannot be learnt and has no finite weight, so it raises ``ValueError`` naming the
    class (by ``label_names`` when given).  A class present in every row gets weight 0.
    """
    t = _binary_matrix(targets, "targets")
    if label_names is not None and len(label_names) != t.shape[1]:
        raise ValueError(f"{len(label_names)} label names for {t.shape[1]} classes")
    positives = t.sum(axis=0)
    missing = np.flatnonzero(positives == 0)
    if missing.size:
        c = int(missing[0])
        name = f" ({label_names[c]!r})" if label_names is not None else ""
        raise ValueError(f"class {c}{name} has no positive row in the training targets")
    return (t.shape[0] - positives) / positives


def confusion(targets: np.ndarray, predictions: np.ndarray) -> Confusion:
    """Per-class TP, FP, FN, TN of 0/1 ``predictions`` against 0/1 ``targets``, both ``(N, C)``."""
    t = _binary_matrix(targets, "targets")
    p = _binary_matrix(predictions, "predictions")
    if t.shape != p.shape:
        raise ValueError(f"targets {t.shape} and predictions {p.shape} differ in shape")
    return Confusion(
        tp=(t & p).sum(axis=0).astype(np.int64),
        fp=(~t & p).sum(axis=0).astype(np.int64),
        fn=(t & ~p).sum(axis=0).astype(np.int64),
        tn=(~t & ~p).sum(axis=0).astype(np.int64),
    )


def precision(c: Confusion) -> np.ndarray:
    """TP / (TP + FP) per class; 0 when the class is never predicted."""
    return _ratio(c.tp, c.tp + c.fp)


def recall(c: Confusion) -> np.ndarray:
    """TP / P per class; 0 when the class has no positives."""
    return _ratio(c.tp, c.positives)


def f1(c: Confusion) -> np.ndarray:
    """Positive-class F1 = 2TP / (2TP + FP + FN) per class; 0 with no predicted and no true positives.

    Written on counts rather than as the harmonic mean of precision and recall so that equal F1 values
    are equal floats (threshold ties are then exact) and the zero-division case is a single one.
    """
    return _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn)


def accuracy(c: Confusion) -> np.ndarray:
    """(TP + TN) / (P + N) per class: the share of rows where the decision on the class is right."""
    return _ratio(c.tp + c.tn, c.positives + c.negatives)


def weighted_accuracy(c: Confusion) -> np.ndarray:
    """The paper's ``(TP * N / P + TN) / (2N)`` per class: accuracy with positives re-weighted to
    count as much as negatives.  P = 0 gives TN / N and N = 0 gives TP / P (see the module docstring).
    """
    p = c.positives.astype(np.float64)
    n = c.negatives.astype(np.float64)
    both = (p > 0) & (n > 0)
    paper = _ratio(_ratio(c.tp * n, p) + c.tn, 2 * n)
    return np.where(both, paper, np.where(p == 0, _ratio(c.tn, n), _ratio(c.tp, p)))


def predict(probs: np.ndarray, thresholds: np.ndarray | Sequence[float]) -> np.ndarray:
    """0/1 ``(N, C)`` int decisions: class ``c`` is predicted when ``probs[:, c] > thresholds[c]``."""
    p = _probabilities(probs)
    t = np.asarray(thresholds, dtype=np.float64)
    if t.shape != (p.shape[1],):
        raise ValueError(f"{t.shape} thresholds for {p.shape[1]} classes; give one per class")
    return (p > t).astype(np.int64)


def choose_thresholds(
    probs: np.ndarray, targets: np.ndarray, grid: Sequence[float] = THRESHOLDS
) -> np.ndarray:
    """Per class, the ``grid`` value maximising that class's F1 on these (validation) rows.

    Ties go to the lowest threshold, whatever order ``grid`` is given in.  Apply the result to test.
    """
    values = np.unique(np.asarray(grid, dtype=np.float64))
    if values.size == 0:
        raise ValueError("the threshold grid must be a non-empty sequence of numbers")
    p = _probabilities(probs)
    t = _binary_matrix(targets, "targets")
    if p.shape != t.shape:
        raise ValueError(f"probs {p.shape} and targets {t.shape} differ in shape")
    scores = np.stack([f1(confusion(t, predict(p, np.full(p.shape[1], v)))) for v in values])  # (grid, C)
    return values[np.argmax(scores, axis=0)]  # argmax takes the first, i.e. lowest, maximum


def task_of(targets: np.ndarray) -> Task:
    """``"singlelabel"`` when every row has exactly one positive (IEMOCAP), else ``"multilabel"`` (MOSEI).

    Decide it once from the training targets and pass it on: a small test split of a multi-label
    dataset can happen to hold one emotion per row, and must still be scored as multi-label.
    """
    t = _binary_matrix(targets, "targets")
    return "singlelabel" if (t.sum(axis=1) == 1).all() else "multilabel"


def compute_metrics(
    probs: np.ndarray,
    targets: np.ndarray,
    thresholds: np.ndarray | Sequence[float],
    label_names: Sequence[str],
    task: Task,
) -> dict:
    """The paper's report for one split, as plain JSON-serialisable Python values.

    Per class: the headline accuracy (``"acc"`` for single-label, ``"wacc"`` for multi-label, which also
    gets plain ``"acc"``), ``"f1"``, precision, recall, the threshold used, the confusion counts and the
    number of positives.  ``"average"`` holds unweighted means over classes of the accuracies and F1.
    """
    if task not in HEADLINE:
        raise ValueError(f"task must be one of {sorted(HEADLINE)}, got {task!r}")
    th = np.asarray(thresholds, dtype=np.float64)
    pred = predict(probs, th)
    c = confusion(targets, pred)
    names = list(label_names)
    if len(names) != len(c.tp) or len(set(names)) != len(names):
        raise ValueError(f"need {len(c.tp)} distinct label names, got {names}")

    scores = {"acc": accuracy(c), "f1": f1(c)}
    if task == "multilabel":
        scores = {"wacc": weighted_accuracy(c), **scores}
    prec, rec = precision(c), recall(c)
    per_class = {
        name: {
            **{key: float(v[i]) for key, v in scores.items()},
            "precision": float(prec[i]),
            "recall": float(rec[i]),
            "threshold": float(th[i]),
            "tp": int(c.tp[i]),
            "fp": int(c.fp[i]),
            "fn": int(c.fn[i]),
            "tn": int(c.tn[i]),
            "positives": int(c.positives[i]),
        }
        for i, name in enumerate(names)
    }
    return {
        "task": task,
        "rows": int(pred.shape[0]),
        "per_class": per_class,
        "average": {key: float(np.mean(v)) for key, v in scores.items()},
    }


def all_positive_metrics(targets: np.ndarray, label_names: Sequence[str], task: Task) -> dict:
    """The report of the trivial predictor that says every class is present in every row.

    The floor a trained model must beat: on imbalanced classes it already scores a non-trivial F1, and
    WAcc 0.5 for every class with both positives and negatives.  It is expressed as probability 1 with
    threshold 0 so that it goes through exactly the same code as a real model's report.
    """
    t = _binary_matrix(targets, "targets")
    return compute_metrics(np.ones(t.shape), t, np.zeros(t.shape[1]), label_names, task)
