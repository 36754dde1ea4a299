"""Grading checks for 00_xai_primer: the course exercises ``occlusion``, ``energy_inside`` (4 points).

The exercises (reference, kinds of cases, forbidden code) live in :mod:`course_utils.exercises`, shared with
the notebook's self-checks; the grader draws the case values from a secret seed (``--secret-seed`` to repeat a
run). To grade differently, build ``RUBRIC`` from your own :class:`~course_utils.grading.rubric.Exercise`
objects here.
"""
from course_utils.exercises import exercises_of
from course_utils.grading.rubric import Rubric

RUBRIC = Rubric(assignment="00_xai_primer", exercises=exercises_of("00_xai_primer"))
