"""Progress bars: one tqdm bar for every long loop of the kit, a widget in a notebook and plain text elsewhere."""
from __future__ import annotations

import functools
import os
import sys

from tqdm.auto import tqdm


def progress_bar(iterable, *, enabled: bool, desc: str, total: int | None = None):
    """tqdm bar (a widget in a notebook, plain text when not in a terminal or in CI); a no-op wrapper when
    ``enabled`` is False."""
    if not enabled:
        return iterable
    notebook = sys.modules.get("tqdm.notebook")
    if notebook is not None and issubclass(tqdm, notebook.tqdm):  # tqdm.auto chose widgets: a notebook kernel
        return _notebook_bar()(iterable, desc=desc, total=total, leave=False)
    plain = bool(os.environ.get("CI")) or not sys.stderr.isatty()
    return tqdm(iterable, desc=desc, total=total, leave=False, ascii=plain, mininterval=1.0 if plain else 0.1)


@functools.cache
def _notebook_bar():
    """tqdm's notebook bar, shown under a display id and replaced by plain text when it closes.

    A closed widget bar would leave an output that points at a widget model which no longer exists, and a notebook
    saved with it shows "Error displaying widget: model not found" when reopened. The text is the bar's last line,
    or nothing for a ``leave=False`` bar that finished.
    """
    from IPython.display import display
    from tqdm.notebook import tqdm as widget_tqdm

    class NotebookBar(widget_tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, display=False, **kwargs)
            self.handle = None if self.disable else display(self.container, display_id=True)

        def close(self):
            finished = not (self.total and self.n < self.total)
            super().close()
            if getattr(self, "handle", None) is not None:
                self.handle.update({"text/plain": "" if finished and not self.leave else str(self)}, raw=True)
                self.handle = None

    return NotebookBar
