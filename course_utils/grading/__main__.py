"""``python -m course_utils.grading`` = the ``course-grade`` command."""
import sys

from course_utils.grading.cli import main

sys.exit(main())
