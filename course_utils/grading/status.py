"""The status of a graded submission: how its notebook ran, or why it was not run.

A ``str`` enum, so a status compares equal to, prints as, and is stored as its word (``grades.csv``'s
``status`` column, the feedback, the gradebook). The notebook runner child (:mod:`course_utils.grading.run_notebook`)
imports only the standard library and reports the same words as plain strings.
"""
from __future__ import annotations

import enum


class Status(enum.StrEnum):
    OK = "ok"                          # the notebook ran to the end
    ERROR = "error"                    # a cell raised
    TIMEOUT = "timeout"                # a cell, or the whole notebook, ran past its time limit
    KERNEL_DIED = "kernel died"        # os._exit, a crash, a memory or file-size limit
    MEMORY = "memory limit"            # a cell raised MemoryError
    NOT_RUN = "not run"                # execution switched off (--no-execute): scored only
    MISSING = "missing"                # a student folder without the assignment's notebook
    INVALID = "invalid"                # not a readable notebook
    GRADER_ERROR = "grader error"      # the grader failed on it (a bug, a lost cluster worker): graded again on resume

    @property
    def ran_cleanly(self) -> bool:
        """Whether nothing went wrong running it (ran to the end, or was not meant to run)."""
        return self in (Status.OK, Status.NOT_RUN)
