"""Authoring tools for instructors and maintainers: notebook generation, running the course, the course site.

Nothing in the science layers (data, models, explainers, metrics, evaluation) imports from here.
"""
