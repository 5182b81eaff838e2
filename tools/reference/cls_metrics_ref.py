#!/usr/bin/env python3
"""scikit-learn's accuracy, macro-F1 and confusion matrix for the cases of tests/test_cls_metrics.c.

Run: /root/.cache/hone/refvenv/bin/python tools/reference/cls_metrics_ref.py
and paste the printed numbers into the test's table if a case changes (scikit-learn is in the reference venv).
Classes are 0..K-1; sklearn's f1_score(average="macro") averages over the labels found in gold or predictions,
with zero_division=0 (its default value, without the warning).
"""
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

CASES = [
    # (name, K, gold, pred)
    ("perfect", 2, [0, 1, 0, 1], [0, 1, 0, 1]),
    ("binary", 2, [0, 0, 0, 1, 1, 1, 1, 0], [0, 1, 0, 1, 1, 0, 1, 0]),
    ("three", 3, [0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 2, 0, 1]),
    ("never_predicted", 3, [0, 1, 2, 2], [0, 1, 1, 1]),
    ("absent_class", 4, [0, 1, 0, 1, 1], [0, 1, 1, 1, 0]),
    ("predicted_never_gold", 3, [0, 0, 1, 1], [0, 2, 1, 1]),
]

for name, k, gold, pred in CASES:
    present = sorted(set(gold) | set(pred))
    acc = accuracy_score(gold, pred)
    f1 = f1_score(gold, pred, average="macro", labels=present, zero_division=0)
    cm = confusion_matrix(gold, pred, labels=list(range(k)))
    print(f'{{"{name}", {acc:.17g}, {f1:.17g}}}, // confusion {cm.tolist()}')
