"""How to judge an explanation: faithfulness (Drop/Increase %, insertion/deletion), localisation against
ground truth, sanity checks, FGVis' adversarial-evidence and colour-bias experiments; and how well a classifier
does per class.

The comparison table of the project is built by :func:`course_utils.evaluate.evaluate`.
"""
from course_utils.metrics.adversarial import (adversarial_evidence, channel_permutation_accuracy, colour_bias,
                                              excited_fraction, maintained_classification_ratio, mean_channel_mask,
                                              relu_outputs)
from course_utils.metrics.bootstrap import Interval, bootstrap_interval
from course_utils.metrics.classification import confusion_counts, per_class_accuracy
from course_utils.metrics.drop_increase import DropIncrease, default_keep, drop_increase, keep_top_k
from course_utils.metrics.insertion_deletion import Curves, auc, deletion, gaussian_blur, insertion
from course_utils.metrics.localisation import (box_iou, energy_inside, iou_top_k, localisation, pointing_game,
                                               threshold_box)
from course_utils.metrics.ranking import salience_order, salience_rank, top_k_mask
from course_utils.metrics.sanity import cascading_randomisation, parameter_layers
from course_utils.metrics.similarity import spearman, ssim
from course_utils.metrics.stability import convergence, run_to_run_consistency, top_k_iou

__all__ = ["Curves", "DropIncrease", "Interval", "adversarial_evidence", "auc", "bootstrap_interval", "box_iou",
           "cascading_randomisation", "channel_permutation_accuracy", "colour_bias", "confusion_counts", "convergence",
           "default_keep", "deletion", "drop_increase", "energy_inside", "excited_fraction", "gaussian_blur",
           "insertion", "iou_top_k", "keep_top_k", "localisation", "maintained_classification_ratio",
           "mean_channel_mask", "parameter_layers", "per_class_accuracy", "pointing_game", "relu_outputs",
           "run_to_run_consistency", "salience_order", "salience_rank", "spearman", "ssim", "threshold_box",
           "top_k_iou", "top_k_mask"]
