"""The bottom layer of the kit: helpers every other part may import and that import nothing of the kit above.

Paths (the source checkout, the data home), progress bars, input and target checks, option validators and the
guard that leaves a model as it was found live here; data, models, explainers and metrics build on them.
"""
