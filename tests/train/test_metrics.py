"""The paper's metrics on cases small enough to count by hand; every expected value is worked out in a
comment, never by calling the code under test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emoprep.train.metrics import (
    THRESHOLDS,
    Confusion,
    accuracy,
    all_positive_metrics,
    choose_thresholds,
    compute_metrics,
    confusion,
    f1,
    pos_weight,
    precision,
    predict,
    recall,
    task_of,
    weighted_accuracy,
)

# Six rows, three classes, chosen so that each class exercises a different WAcc case.
#   class 0: P=2, N=4, one hit and one false alarm  -> TP=1, FN=1, FP=1, TN=3
#   class 1: P=0, N=6, one false alarm              -> TP=0, FN=0, FP=1, TN=5
#   class 2: P=6, N=0, half the positives found     -> TP=3, FN=3, FP=0, TN=0
TARGETS = np.array(
    [[1, 0, 1], [1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]],
)
PREDS = np.array(
    [[1, 1, 1], [0, 0, 1], [1, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]],
)


def counts() -> Confusion:
    return confusion(TARGETS, PREDS)


def test_thresholds_grid() -> None:
    # 0.05 * 1 ... 0.05 * 19, exact decimals after rounding
    assert len(THRESHOLDS) == 19
    assert THRESHOLDS[0] == 0.05 and THRESHOLDS[2] == 0.15 and THRESHOLDS[-1] == 0.95
    assert THRESHOLDS[5] == 0.3


def test_confusion_counts() -> None:
    c = counts()
    assert c.tp.tolist() == [1, 0, 3]
    assert c.fp.tolist() == [1, 1, 0]
    assert c.fn.tolist() == [1, 0, 3]
    assert c.tn.tolist() == [3, 5, 0]
    assert c.positives.tolist() == [2, 0, 6]
    assert c.negatives.tolist() == [4, 6, 0]


def test_weighted_accuracy() -> None:
    # class 0: (TP*N/P + TN) / (2N) = (1*4/2 + 3) / 8 = 5/8 = 0.625
    # class 1: P = 0 -> TN / N = 5/6
    # class 2: N = 0 -> TP / P = 3/6 = 0.5
    assert weighted_accuracy(counts()) == pytest.approx([0.625, 5 / 6, 0.5])


def test_weighted_accuracy_differs_from_accuracy_when_both_kinds_exist() -> None:
    # accuracy = (TP + TN) / rows: class 0 (1+3)/6 = 2/3, class 1 5/6, class 2 3/6 = 1/2:
    # equal to WAcc where P = 0 or N = 0, different (2/3 vs 5/8) where both exist
    assert accuracy(counts()) == pytest.approx([2 / 3, 5 / 6, 0.5])


def test_f1_precision_recall() -> None:
    # F1 = 2TP / (2TP + FP + FN): class 0 2/(2+1+1) = 0.5; class 1 0/(0+1+0) = 0;
    # class 2 6/(6+0+3) = 2/3
    c = counts()
    assert f1(c) == pytest.approx([0.5, 0.0, 2 / 3])
    # precision TP/(TP+FP): 1/2, 0/1, 3/3; recall TP/P: 1/2, P=0 -> 0, 3/6
    assert precision(c) == pytest.approx([0.5, 0.0, 1.0])
    assert recall(c) == pytest.approx([0.5, 0.0, 0.5])


def test_zero_division_cases() -> None:
    # class 0: no positives, nothing predicted: TP=FP=FN=0 -> F1, precision, recall all 0; TN=3 of N=3
    #          -> accuracy 1, WAcc = TN/N = 1
    # class 1: three positives, nothing predicted: TP=0, FN=3 -> F1 0, precision 0 (nothing predicted),
    #          recall 0; N=0 -> WAcc = TP/P = 0
    c = confusion(np.array([[0, 1], [0, 1], [0, 1]]), np.zeros((3, 2), dtype=int))
    assert f1(c).tolist() == [0.0, 0.0]
    assert precision(c).tolist() == [0.0, 0.0]
    assert recall(c).tolist() == [0.0, 0.0]
    assert accuracy(c).tolist() == [1.0, 0.0]
    assert weighted_accuracy(c).tolist() == [1.0, 0.0]


def test_predict_is_strictly_greater() -> None:
    # 0.5 > 0.5 is false: a probability equal to its threshold is a negative
    probs = np.array([[0.5, 0.51], [0.49, 0.5]])
    assert predict(probs, [0.5, 0.5]).tolist() == [[0, 1], [0, 0]]


def test_predict_refuses_logits_and_wrong_thresholds() -> None:
    with pytest.raises(ValueError, match="sigmoid"):
        predict(np.array([[2.3, -1.0]]), [0.5, 0.5])
    with pytest.raises(ValueError, match="one per class"):
        predict(np.array([[0.2, 0.7]]), [0.5])


def test_confusion_refuses_non_binary_targets() -> None:
    with pytest.raises(ValueError, match="0/1"):
        confusion(np.array([[0.4, 1.0]]), np.array([[0, 1]]))


def test_choose_thresholds_with_tie_and_equality() -> None:
    probs = np.array(
        [[0.9, 0.15, 0.3], [0.7, 0.55, 0.2], [0.3, 0.6, 0.1], [0.2, 0.95, 0.8]],
    )
    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 0]])
    # class 0 (probs .9 .7 .3 .2, targets 1 1 0 0): F1 = 1 exactly when .7 > t and not .3 > t, i.e.
    #   t in {0.30, ..., 0.65}; the tie goes to the lowest, 0.30.  At t = 0.30 the row with prob 0.3 is
    #   negative only because the rule is ">"; with ">=" it would have been 0.35.
    # class 1 (probs .15 .55 .6 .95, targets 0 1 0 1):
    #   t in {.05, .10}: all four predicted, TP=2 FP=2 -> F1 4/6
    #   t in {.15 ... .50}: .55 .6 .95 predicted, TP=2 FP=1 -> F1 4/5  (the maximum, lowest is 0.15)
    #   t = .55: .6 .95, TP=1 FP=1 FN=1 -> 2/4;  t in {.60 ... .90}: .95 only -> 2/3;  t = .95: 0
    # class 2: no positives -> F1 0 at every threshold -> tie -> 0.05
    chosen = choose_thresholds(probs, targets)
    assert chosen.tolist() == [0.3, 0.15, 0.05]
    # the tie rule does not depend on the order of the grid
    assert choose_thresholds(probs, targets, grid=THRESHOLDS[::-1]).tolist() == [0.3, 0.15, 0.05]


def test_pos_weight() -> None:
    # class 0: 1 positive, 3 negatives -> 3/1 = 3; class 1: 3 positives, 1 negative -> 1/3
    targets = np.array([[1, 0], [0, 1], [0, 1], [0, 1]])
    assert pos_weight(targets) == pytest.approx([3.0, 1 / 3])


def test_pos_weight_names_class_without_positives() -> None:
    targets = np.array([[1, 0], [1, 0]])
    with pytest.raises(ValueError, match="class 1 "):
        pos_weight(targets)
    with pytest.raises(ValueError, match="class 1 \\('sad'\\)"):
        pos_weight(targets, ["hap", "sad"])


def test_task_of() -> None:
    assert task_of(np.array([[1, 0, 0], [0, 0, 1]])) == "singlelabel"
    # a row with two emotions, or with none, makes the data multi-label
    assert task_of(np.array([[1, 1, 0], [0, 0, 1]])) == "multilabel"
    assert task_of(np.array([[0, 0, 0], [0, 0, 1]])) == "multilabel"


def test_compute_metrics_multilabel_averages_are_unweighted() -> None:
    probs = np.where(PREDS == 1, 0.9, 0.1)  # decisions at threshold 0.5 are exactly PREDS
    m = compute_metrics(probs, TARGETS, [0.5, 0.5, 0.5], ["ang", "fea", "hap"], "multilabel")
    assert m["task"] == "multilabel" and m["rows"] == 6
    # means over classes, each class counting once:
    #   WAcc (5/8 + 5/6 + 1/2) / 3 = (15/24 + 20/24 + 12/24) / 3 = 47/72
    #   F1   (1/2 + 0 + 2/3) / 3 = 7/18   (the pooled F1 would be 2*4/(8+2+4) = 4/7)
    #   Acc  (2/3 + 5/6 + 1/2) / 3 = 2/3
    assert m["average"] == pytest.approx({"wacc": 47 / 72, "acc": 2 / 3, "f1": 7 / 18})
    assert m["per_class"]["ang"] == pytest.approx(
        {
            "wacc": 0.625, "acc": 2 / 3, "f1": 0.5, "precision": 0.5, "recall": 0.5, "threshold": 0.5,
            "tp": 1, "fp": 1, "fn": 1, "tn": 3, "positives": 2,
        }
    )


def test_compute_metrics_singlelabel() -> None:
    targets = np.array([[1, 0], [1, 0], [1, 0], [0, 1]])
    probs = np.array([[0.8, 0.3], [0.6, 0.2], [0.4, 0.7], [0.2, 0.9]])
    m = compute_metrics(probs, targets, [0.5, 0.5], ["ang", "sad"], "singlelabel")
    # decisions [[1,0],[1,0],[0,1],[0,1]]
    # ang: TP=2 FN=1 FP=0 TN=1 -> acc 3/4, F1 4/5;  sad: TP=1 FP=1 FN=0 TN=2 -> acc 3/4, F1 2/3
    # averages: acc 3/4, F1 (4/5 + 2/3) / 2 = 11/15
    assert "wacc" not in m["average"] and "wacc" not in m["per_class"]["ang"]
    assert m["average"] == pytest.approx({"acc": 0.75, "f1": 11 / 15})
    assert m["per_class"]["sad"]["f1"] == pytest.approx(2 / 3)
    assert m["per_class"]["ang"]["f1"] == pytest.approx(0.8)


def test_compute_metrics_is_json_serialisable() -> None:
    probs = np.where(PREDS == 1, 0.9, 0.1).astype(np.float32)
    thresholds = np.array([0.15, 0.5, 0.95], dtype=np.float32)
    m = compute_metrics(probs, TARGETS.astype(np.float32), thresholds, ["a", "b", "c"], "multilabel")
    text = json.dumps(m, allow_nan=False)  # raises on numpy scalars or NaN
    assert json.loads(text) == m


def test_compute_metrics_refuses_bad_label_names_and_task() -> None:
    probs = np.full((2, 2), 0.7)
    targets = np.array([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="label names"):
        compute_metrics(probs, targets, [0.5, 0.5], ["a"], "singlelabel")
    with pytest.raises(ValueError, match="task"):
        compute_metrics(probs, targets, [0.5, 0.5], ["a", "b"], "multiclass")  # type: ignore[arg-type]


def test_all_positive_baseline_multilabel() -> None:
    # every class predicted in every row: TP = P, FP = N, FN = TN = 0
    targets = np.array([[1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0]])
    m = all_positive_metrics(targets, ["ang", "dis", "hap", "fea"], "multilabel")
    pc = m["per_class"]
    # ang P=1 N=3: F1 2/(2+3) = 0.4, WAcc (1*3/1 + 0)/6 = 0.5, acc 1/4, precision 1/4, recall 1
    assert pc["ang"] == pytest.approx(
        {
            "wacc": 0.5, "acc": 0.25, "f1": 0.4, "precision": 0.25, "recall": 1.0, "threshold": 0.0,
            "tp": 1, "fp": 3, "fn": 0, "tn": 0, "positives": 1,
        }
    )
    # dis P=2 N=2: F1 4/6, WAcc 0.5, acc 1/2
    assert [pc["dis"][k] for k in ("f1", "wacc", "acc")] == pytest.approx([2 / 3, 0.5, 0.5])
    # hap P=4 N=0: F1 8/8 = 1, WAcc = TP/P = 1, acc 1
    assert [pc["hap"][k] for k in ("f1", "wacc", "acc")] == pytest.approx([1.0, 1.0, 1.0])
    # fea P=0 N=4: F1 0/(0+4+0) = 0, WAcc = TN/N = 0, acc 0
    assert [pc["fea"][k] for k in ("f1", "wacc", "acc")] == pytest.approx([0.0, 0.0, 0.0])
    # averages: WAcc (.5+.5+1+0)/4 = .5; F1 (2/5+2/3+1+0)/4 = 31/60; acc (1/4+1/2+1+0)/4 = 7/16
    assert m["average"] == pytest.approx({"wacc": 0.5, "acc": 7 / 16, "f1": 31 / 60})


def test_all_positive_baseline_singlelabel() -> None:
    # 4 rows, ang 3 of them, sad 1: acc = P/rows -> 3/4 and 1/4; F1 = 2P/(2P+N) -> 6/7 and 2/5
    targets = np.array([[1, 0], [1, 0], [1, 0], [0, 1]])
    m = all_positive_metrics(targets, ["ang", "sad"], "singlelabel")
    assert m["per_class"]["ang"]["acc"] == pytest.approx(0.75)
    assert m["per_class"]["ang"]["f1"] == pytest.approx(6 / 7)
    assert m["per_class"]["sad"]["acc"] == pytest.approx(0.25)
    assert m["per_class"]["sad"]["f1"] == pytest.approx(0.4)
    # averages: acc 1/2, F1 (6/7 + 2/5)/2 = (30/35 + 14/35)/2 = 22/35
    assert m["average"] == pytest.approx({"acc": 0.5, "f1": 22 / 35})
