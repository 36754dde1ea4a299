"""Grading checks for 08_project_evaluation: the course exercises ``keep_top_k``, ``drop_increase``,
``gradcam_map``, ``rise_saliency`` (7 points; the other 13 of the project's 20 are graded by hand: the settings
sweep, the sanity check and the discussion).

The exercises (reference, kinds of cases, forbidden code) live in :mod:`course_utils.exercises`, shared with
the notebook's self-checks; the grader draws the case values from a secret seed (``--secret-seed`` to repeat a
run). To grade differently, build ``RUBRIC`` from your own :class:`~course_utils.grading.rubric.Exercise`
objects here.
"""
from course_utils.exercises import exercises_of
from course_utils.grading.rubric import Rubric

RUBRIC = Rubric(assignment="08_project_evaluation", exercises=exercises_of("08_project_evaluation"))
