"""The notebooks' parameters: a ``parameters`` cell value that an environment variable may override."""
from __future__ import annotations

import os

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def env_default(name: str, default):
    """``default``, unless the environment variable ``name`` is set; then its value, converted to ``default``'s type.

    Used in a notebook's ``parameters`` cell so that runs that cannot inject parameters (nbval) can still switch
    e.g. fast mode: ``fast = env_default("COURSE_FAST", False)``. Booleans accept 1/0, true/false, yes/no, on/off.
    """
    raw = os.environ.get(name)
    if raw is None:
        return default
    if isinstance(default, bool):
        value = raw.strip().lower()
        if value in _TRUE | _FALSE:
            return value in _TRUE
        raise ValueError(f"environment variable {name}={raw!r} is not a boolean; set it to 1 or 0.")
    if isinstance(default, (int, float)):
        try:
            return type(default)(raw)
        except ValueError:
            raise ValueError(f"environment variable {name}={raw!r} is not a {type(default).__name__}; "
                             f"set it to a number like {default!r}.") from None
    return raw
