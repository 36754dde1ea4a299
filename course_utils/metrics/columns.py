"""The comparison table's columns (:func:`course_utils.evaluate.evaluate`) and which way each is better."""

METRICS = ["Drop%", "Increase%", "insertion AUC", "deletion AUC", "seconds per sample"]
LOCALISATION = ["pointing game", "energy inside", "IoU top-k"]
"""Extra columns when the dataset has ground-truth ``positions``."""
BETTER = {"Drop%": "lower", "Increase%": "higher", "insertion AUC": "higher", "deletion AUC": "lower",
          "seconds per sample": "lower", **dict.fromkeys(LOCALISATION, "higher")}
