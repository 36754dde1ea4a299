"""Speed benchmarks: ``python -m benchmarks`` (see ``__main__``). The kit is imported first so that its threading
choice (``course_utils.core.threads``) is in place before torch loads, as in a notebook."""
import course_utils  # noqa: F401
