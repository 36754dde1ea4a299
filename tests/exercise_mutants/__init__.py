"""Plausible wrong answers to every exercise of the course, for tests/test_exercise_mutants.py.

``MUTANTS[name]`` lists ``(label, source, earns_nothing)``: ``source`` defines the student function ``name``
(it may use the names the solution notebook imports); ``earns_nothing`` marks a trivial answer or a library
call, which must score 0 points, where the other mutants must merely lose points. To add mutants for a new
exercise, add its entry here: the tests pick it up for every notebook that has the exercise.
"""
from tests.exercise_mutants.attribution import MUTANTS as _ATTRIBUTION
from tests.exercise_mutants.evaluation import MUTANTS as _EVALUATION
from tests.exercise_mutants.foundations import MUTANTS as _FOUNDATIONS
from tests.exercise_mutants.perturbation import MUTANTS as _PERTURBATION
from tests.exercise_mutants.primer import MUTANTS as _PRIMER

MUTANTS = {**_FOUNDATIONS, **_PRIMER, **_ATTRIBUTION, **_PERTURBATION, **_EVALUATION}

KILL_RATES: dict[str, tuple[int, int]] = {}
"""Filled by the mutation tests as they run: notebook -> (mutants killed, mutants); printed after the run."""
