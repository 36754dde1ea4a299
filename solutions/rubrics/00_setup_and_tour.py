"""Grading checks for 00_setup_and_tour: the course exercises ``conv_output_length`` (1 point).

The exercises (reference, kinds of cases, forbidden code) live in :mod:`course_utils.exercises`, shared with
the notebook's self-checks; the grader draws the case values from a secret seed (``--secret-seed`` to repeat a
run). To grade differently, build ``RUBRIC`` from your own :class:`~course_utils.grading.rubric.Exercise`
objects here.
"""
from course_utils.exercises import exercises_of
from course_utils.grading.rubric import Rubric

RUBRIC = Rubric(assignment="00_setup_and_tour", exercises=exercises_of("00_setup_and_tour"))
