"""How a test checks a number that the course text quotes: at the precision it is printed with, ± one unit in the
last printed place, so that a figure on a rounding boundary does not flip with the CPU's floating-point order."""
from decimal import Decimal


def assert_quoted(quoted: str, value: float, what: str = "the quoted figure") -> None:
    """``value`` printed with as many decimals as ``quoted`` is ``quoted``, or one unit away in the last place."""
    places = len(quoted.split(".")[1]) if "." in quoted else 0
    printed = Decimal(f"{float(value):.{places}f}")
    unit = Decimal(1).scaleb(-places)
    assert abs(printed - Decimal(quoted.replace("−", "-"))) <= unit, \
        f"{what}: the text says {quoted}, the kit computes {float(value)!r} ({printed} at that precision)"
