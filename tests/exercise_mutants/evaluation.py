"""Wrong answers for the project's top-k masking and Drop% / Increase% (08)."""
WRONG, NOTHING = False, True

_KEEP = """
def keep_top_k(x, saliency, keep):
    n = x.shape[0]
    flat = {flat}
    k = {k}
    order = {order}
    kept = torch.zeros_like(flat, dtype=torch.bool)
    kept.scatter_(1, order[:, :k], True)
    kept = kept.reshape(n, 1, *saliency.shape[1:])
    return {result}
"""


def _keep(flat="saliency.reshape(n, -1)", k="max(1, round(keep * flat.shape[1]))",
          order="torch.argsort(-flat, dim=1, stable=True)", result="torch.where(kept, x, torch.zeros_like(x))"):
    return _KEEP.format(flat=flat, k=k, order=order, result=result)


_DROP = """
def drop_increase(y, o):
    drop = {drop}
    increase = {increase}
    return {result}
"""


def _drop(drop="100.0 * ((y - o).clamp(min=0) / y).mean().item()", increase="100.0 * (o > y).float().mean().item()",
          result="drop, increase"):
    return _DROP.format(drop=drop, increase=increase, result=result)


MUTANTS = {
    "keep_top_k": [
        ("k truncated instead of rounded", _keep(k="max(1, int(keep * flat.shape[1]))"), WRONG),
        ("keeps the smallest values", _keep(order="torch.argsort(flat, dim=1, stable=True)"), WRONG),
        ("ties go to the higher index", _keep(
            order="flat.shape[1] - 1 - torch.argsort(-flat.flip(1), dim=1, stable=True)"), WRONG),
        ("ranks |saliency|", _keep(flat="saliency.reshape(n, -1).abs()"), WRONG),
        ("zeroes the top k instead of keeping it", _keep(result="torch.where(kept, torch.zeros_like(x), x)"), WRONG),
        ("top k per channel (channels flattened in)", """
def keep_top_k(x, saliency, keep):
    flat = (saliency.unsqueeze(1) * torch.ones_like(x)).reshape(x.shape[0], -1)
    k = max(1, round(keep * flat.shape[1]))
    order = torch.argsort(-flat, dim=1, stable=True)
    kept = torch.zeros_like(flat, dtype=torch.bool).scatter(1, order[:, :k], True)
    return torch.where(kept.reshape(x.shape), x, torch.zeros_like(x))
""", WRONG),
        ("returns x unchanged", """
def keep_top_k(x, saliency, keep):
    return x
""", NOTHING),
        ("all zeros", """
def keep_top_k(x, saliency, keep):
    return torch.zeros_like(x)
""", NOTHING),
        ("course_utils.metrics through importlib (the library)", """
def keep_top_k(x, saliency, keep):
    import importlib
    return importlib.import_module("course_utils.metrics").keep_top_k(x, saliency, keep)
""", NOTHING),
        ("course_utils.metrics through sys.modules (the library)", """
def keep_top_k(x, saliency, keep):
    import sys
    __import__("course_utils.metrics")
    return sys.modules["course_utils.metrics.drop_increase"].keep_top_k(x, saliency, keep)
""", NOTHING),
    ],
    "drop_increase": [
        ("a tie counts as an increase (o ≥ y)", _drop(increase="100.0 * (o >= y).float().mean().item()"), WRONG),
        ("no clamp (increases cancel drops)", _drop(drop="100.0 * ((y - o) / y).mean().item()"), WRONG),
        ("divides by o", _drop(drop="100.0 * ((y - o).clamp(min=0) / o).mean().item()"), WRONG),
        ("fractions, not percent", _drop(drop="((y - o).clamp(min=0) / y).mean().item()",
                                         increase="(o > y).float().mean().item()"), WRONG),
        ("returns (increase, drop)", _drop(result="increase, drop"), WRONG),
        ("averages the drop over the dropped samples only", _drop(
            drop="100.0 * ((y - o) / y)[o < y].mean().item()"), WRONG),
        ("increase as a count", _drop(increase="float((o > y).sum())"), WRONG),
        ("zeros", """
def drop_increase(y, o):
    return 0.0, 0.0
""", NOTHING),
        ("a plausible constant", """
def drop_increase(y, o):
    return 50.0, 25.0
""", NOTHING),
        ("the course's reference answer (course_utils.exercises)", """
def drop_increase(y, o):
    from course_utils.exercises import exercise
    return exercise("drop_increase").reference(y, o)
""", NOTHING),
    ],
}
