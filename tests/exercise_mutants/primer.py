"""Wrong answers for the primer (00_xai_primer)."""
WRONG, NOTHING = False, True

_OCC = """
def occlusion(model, x, target, width):
    n, _, length = x.shape
    positions = torch.arange(length)
    hidden = {hidden}
    with torch.no_grad():
        base = model(x){score}.gather(1, target[:, None])
        occluded = x.unsqueeze(1) * {fill}
        scores = model(occluded.flatten(0, 1)){score}.view(n, length, -1)
    return {result}
"""


def _occ(hidden="(positions[None, :] >= positions[:, None]) & (positions[None, :] < positions[:, None] + width)",
         score="", fill="(~hidden).to(x.dtype)[None, :, None, :]",
         result="base - scores.gather(2, target.view(n, 1, 1).expand(n, length, 1)).squeeze(2)"):
    return _OCC.format(hidden=hidden, score=score, fill=fill, result=result)


MUTANTS = {
    "occlusion": [
        ("hides one point whatever the width", _occ(hidden="positions[None, :] == positions[:, None]"), WRONG),
        ("window centred on i", _occ(
            hidden="(positions[None, :] - positions[:, None]).abs() <= width // 2"), WRONG),
        ("softmax probability instead of the logit", _occ(score=".softmax(1)"), WRONG),
        ("wrong sign (occluded minus original)", _occ(
            result="scores.gather(2, target.view(n, 1, 1).expand(n, length, 1)).squeeze(2) - base"), WRONG),
        ("window of width + 1", _occ(
            hidden="(positions[None, :] >= positions[:, None]) & (positions[None, :] <= positions[:, None] + width)"),
         WRONG),
        ("occludes with the signal's mean instead of 0", """
def occlusion(model, x, target, width):
    n, _, length = x.shape
    positions = torch.arange(length)
    hidden = (positions[None, :] >= positions[:, None]) & (positions[None, :] < positions[:, None] + width)
    with torch.no_grad():
        base = model(x).gather(1, target[:, None])
        fill = x.mean(-1, keepdim=True).unsqueeze(1)
        occluded = torch.where(hidden[None, :, None, :], fill, x.unsqueeze(1))
        scores = model(occluded.flatten(0, 1)).view(n, length, -1)
    return base - scores.gather(2, target.view(n, 1, 1).expand(n, length, 1)).squeeze(2)
""", WRONG),
        ("all zeros", """
def occlusion(model, x, target, width):
    return torch.zeros(x.shape[0], x.shape[-1])
""", NOTHING),
        ("captum's Occlusion (a library)", """
def occlusion(model, x, target, width):
    from captum.attr import Occlusion
    return Occlusion(model).attribute(x, target=target, sliding_window_shapes=(1, width), strides=1)[:, 0]
""", NOTHING),
    ],
    "energy_inside": [
        ("signed energy (no clamp)", """
def energy_inside(maps, truth):
    m = maps.flatten(1)
    return (m * truth.flatten(1)).sum(1) / m.sum(1)
""", WRONG),
        ("absolute values", """
def energy_inside(maps, truth):
    m = maps.abs().flatten(1)
    return (m * truth.flatten(1)).sum(1) / m.sum(1)
""", WRONG),
        ("share of the truth's positions that are positive", """
def energy_inside(maps, truth):
    t = truth.flatten(1)
    return ((maps.flatten(1) > 0) & t).sum(1) / t.sum(1)
""", WRONG),
        ("NaN instead of 0 without positive values", """
def energy_inside(maps, truth):
    m = maps.clamp(min=0).flatten(1)
    return (m * truth.flatten(1)).sum(1) / m.sum(1)
""", WRONG),
        ("energy outside", """
def energy_inside(maps, truth):
    m = maps.clamp(min=0).flatten(1)
    total = m.sum(1)
    return torch.where(total > 0, (m * ~truth.flatten(1)).sum(1) / total.clamp(min=1e-12), 0.0)
""", WRONG),
        ("one value for the whole batch", """
def energy_inside(maps, truth):
    m = maps.clamp(min=0)
    return (m * truth).sum() / m.sum()
""", WRONG),
        ("all zeros", """
def energy_inside(maps, truth):
    return torch.zeros(maps.shape[0])
""", NOTHING),
        ("course_utils.metrics (the library)", """
def energy_inside(maps, truth):
    from course_utils.metrics import energy_inside as library
    return library(maps, truth)
""", NOTHING),
    ],
}
