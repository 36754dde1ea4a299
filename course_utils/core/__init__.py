"""The bottom layer of the kit: helpers every other part may import and that import nothing of the kit above.

:mod:`~course_utils.core.paths` (the source checkout, the data home), :mod:`~course_utils.core.progress` (progress
bars), :mod:`~course_utils.core.checks` (input, target and model checks, option validators),
:mod:`~course_utils.core.model_state` (the guard that leaves a model as it was found) and
:mod:`~course_utils.core.filters` (the Gaussian blur); data, models, explainers and metrics build on them.
"""
