"""The notebooks' exercises, one source for their self-checks and their grading.

Each exercise is a :class:`course_utils.exercises.spec.Exercise`: the function the student writes (its name
and signature are the notebook's contract), the reference, a generator of cases (called with a
``torch.Generator``), the check comparing an answer with the reference, and the code it forbids. A notebook's
self-check draws the cases with the notebook's public ``seed``; the grader draws new cases of the same kinds
from a secret seed. Same cases, same check, same forbidden code: a local PASS means full marks.

``ASSIGNMENTS`` maps each notebook (its file name without ``.ipynb``) to its exercises, in notebook order.
"""
from __future__ import annotations

from course_utils.exercises import attribution, evaluation, foundations, perturbation, primer

ASSIGNMENTS = {
    "00_setup_and_tour": (foundations.CONV_OUTPUT_LENGTH,),
    "00_xai_primer": (primer.OCCLUSION, primer.ENERGY_INSIDE),
    "01_mnist1d": (foundations.RECEPTIVE_FIELD,),
    "02_hmt": (foundations.CONFUSION_COUNTS,),
    "03_gradient_methods": (attribution.INTEGRATED_GRADIENTS,),
    "04_cam_gradcam": (attribution.GRADCAM_WEIGHTS,),
    "05_rise": (attribution.RISE_SALIENCY,),
    "06_meaningful_perturbation": (perturbation.PERTURB, perturbation.TV_BETA),
    "07_fgvis": (perturbation.GRADIENT_GATE,),
    "08_project_evaluation": (evaluation.KEEP_TOP_K, evaluation.DROP_INCREASE, attribution.GRADCAM_MAP,
                              attribution.RISE_SALIENCY),
}


def exercises_of(assignment: str):
    """The exercises of ``assignment`` (e.g. ``"08_project_evaluation"``), in notebook order."""
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"no exercises for {assignment!r}; choose one of {sorted(ASSIGNMENTS)}.")
    return ASSIGNMENTS[assignment]


def exercise(name: str):
    """The exercise whose student function is called ``name`` (e.g. ``"keep_top_k"``)."""
    for exercises in ASSIGNMENTS.values():
        for ex in exercises:
            if ex.name == name:
                return ex
    names = sorted({ex.name for exercises in ASSIGNMENTS.values() for ex in exercises})
    raise ValueError(f"no exercise called {name!r}; the exercises are {names}.")
