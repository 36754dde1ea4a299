"""Wrong answers for Meaningful Perturbation's Φ and TV_β (06), FGVis' gate (07) and Thakur & Fischmeister's
context weights R (05_thakur_fischmeister)."""
WRONG, NOTHING = False, True

_GATE = """
def gradient_gate(h_perturbed, h_clean):
    inside = {inside}
    return torch.where(inside, h_perturbed, h_perturbed.detach())
"""


def _gate(inside):
    return _GATE.format(inside=inside)


MUTANTS = {
    "perturb": [
        ("x and the reference swapped", """
def perturb(x, mask, reference):
    m = upsample(mask, x.shape[2:])
    return m * reference + (1 - m) * x
""", WRONG),
        ("nearest-neighbour upsampling", """
def perturb(x, mask, reference):
    m = torch.nn.functional.interpolate(mask, size=x.shape[2:], mode="nearest")
    return m * x + (1 - m) * reference
""", WRONG),
        ("ignores the reference", """
def perturb(x, mask, reference):
    return upsample(mask, x.shape[2:]) * x
""", WRONG),
        ("forgets (1 − m)", """
def perturb(x, mask, reference):
    m = upsample(mask, x.shape[2:])
    return m * x + reference
""", WRONG),
        ("linear interpolation (1-D only)", """
def perturb(x, mask, reference):
    m = torch.nn.functional.interpolate(mask, size=x.shape[2:], mode="linear", align_corners=False)
    return m * x + (1 - m) * reference
""", WRONG),
        ("align_corners=True", """
def perturb(x, mask, reference):
    mode = "linear" if x.dim() == 3 else "bilinear"
    m = torch.nn.functional.interpolate(mask, size=x.shape[2:], mode=mode, align_corners=True)
    return m * x + (1 - m) * reference
""", WRONG),
        ("returns x unchanged", """
def perturb(x, mask, reference):
    return x
""", NOTHING),
        ("returns the reference", """
def perturb(x, mask, reference):
    return reference.clone()
""", NOTHING),
    ],
    "tv_beta": [
        ("no absolute value", """
def tv_beta(mask, beta=3.0):
    total = torch.zeros(mask.shape[0])
    for axis in range(2, mask.dim()):
        total = total + torch.diff(mask, dim=axis).pow(beta).flatten(1).sum(1)
    return total
""", WRONG),
        ("last axis only (1-D only)", """
def tv_beta(mask, beta=3.0):
    return torch.diff(mask, dim=-1).abs().pow(beta).flatten(1).sum(1)
""", WRONG),
        ("always squares (ignores β)", """
def tv_beta(mask, beta=3.0):
    total = torch.zeros(mask.shape[0])
    for axis in range(2, mask.dim()):
        total = total + torch.diff(mask, dim=axis).abs().pow(2).flatten(1).sum(1)
    return total
""", WRONG),
        ("mean instead of sum", """
def tv_beta(mask, beta=3.0):
    total = torch.zeros(mask.shape[0])
    for axis in range(2, mask.dim()):
        total = total + torch.diff(mask, dim=axis).abs().pow(beta).flatten(1).mean(1)
    return total
""", WRONG),
        ("sums over the batch too", """
def tv_beta(mask, beta=3.0):
    return sum(torch.diff(mask, dim=axis).abs().pow(beta).sum() for axis in range(2, mask.dim()))
""", WRONG),
        ("wraps around the border (roll)", """
def tv_beta(mask, beta=3.0):
    total = torch.zeros(mask.shape[0])
    for axis in range(2, mask.dim()):
        total = total + (mask.roll(-1, dims=axis) - mask).abs().pow(beta).flatten(1).sum(1)
    return total
""", WRONG),
        ("all zeros", """
def tv_beta(mask, beta=3.0):
    return torch.zeros(mask.shape[0])
""", NOTHING),
        ("the kit's total_variation (the library)", """
def tv_beta(mask, beta=3.0):
    from course_utils.explainers.meaningful_perturbation import total_variation
    return total_variation(mask, beta)
""", NOTHING),
    ],
    "gradient_gate": [
        ("no lower bound", _gate("h_perturbed <= h_clean.clamp(min=0)"), WRONG),
        ("no upper bound", _gate("h_perturbed >= h_clean.clamp(max=0)"), WRONG),
        ("strict inequalities", _gate("(h_perturbed > h_clean.clamp(max=0)) & (h_perturbed < h_clean.clamp(min=0))"),
         WRONG),
        ("the ReLU reading 0 ≤ h(e) ≤ h(x) only", _gate("(h_perturbed >= 0) & (h_perturbed <= h_clean)"), WRONG),
        ("arguments swapped", _gate("(h_clean >= h_perturbed.clamp(max=0)) & (h_clean <= h_perturbed.clamp(min=0))"),
         WRONG),
        ("gradient cut everywhere", """
def gradient_gate(h_perturbed, h_clean):
    return h_perturbed.detach()
""", NOTHING),
        ("no gate at all", """
def gradient_gate(h_perturbed, h_clean):
    return h_perturbed
""", NOTHING),
        ("all zeros", """
def gradient_gate(h_perturbed, h_clean):
    return torch.zeros_like(h_perturbed)
""", NOTHING),
        ("the kit's ActivationRangeDefense (the library)", """
def gradient_gate(h_perturbed, h_clean):
    from course_utils.explainers.fgvis import ActivationRangeDefense
    defense = ActivationRangeDefense()
    with torch.no_grad(), defense.recording():
        torch.relu(h_clean)
    with defense.filtering():
        return torch.relu(h_perturbed)
""", NOTHING),
    ],
    "context_weights": [
        ("the box itself, not inverted", """
def context_weights(region, s):
    pool = torch.nn.functional.avg_pool1d if region.dim() == 2 else torch.nn.functional.avg_pool2d
    return pool(region.unsqueeze(1), s, stride=1, padding=s // 2, count_include_pad=False).squeeze(1)
""", WRONG),
        ("zero padding counted at the border", """
def context_weights(region, s):
    pool = torch.nn.functional.avg_pool1d if region.dim() == 2 else torch.nn.functional.avg_pool2d
    return pool((1 - region).unsqueeze(1), s, stride=1, padding=s // 2).squeeze(1)
""", WRONG),
        ("inverted after the convolution of the zero-padded box", """
def context_weights(region, s):
    pool = torch.nn.functional.avg_pool1d if region.dim() == 2 else torch.nn.functional.avg_pool2d
    return 1 - pool(region.unsqueeze(1), s, stride=1, padding=s // 2).squeeze(1)
""", WRONG),
        ("sum instead of mean over the window", """
def context_weights(region, s):
    pool = torch.nn.functional.avg_pool1d if region.dim() == 2 else torch.nn.functional.avg_pool2d
    mean = pool((1 - region).unsqueeze(1), s, stride=1, padding=s // 2, count_include_pad=False).squeeze(1)
    return mean * s ** (region.dim() - 1)
""", WRONG),
        ("a window of 2s + 1", """
def context_weights(region, s):
    pool = torch.nn.functional.avg_pool1d if region.dim() == 2 else torch.nn.functional.avg_pool2d
    return pool((1 - region).unsqueeze(1), 2 * s + 1, stride=1, padding=s, count_include_pad=False).squeeze(1)
""", WRONG),
        ("only the last axis filtered", """
def context_weights(region, s):
    flat = (1 - region).reshape(-1, 1, region.shape[-1])
    out = torch.nn.functional.avg_pool1d(flat, s, stride=1, padding=s // 2, count_include_pad=False)
    return out.reshape(region.shape)
""", WRONG),
        ("no filter (R = 1 − B)", """
def context_weights(region, s):
    return 1 - region
""", WRONG),
        ("all ones", """
def context_weights(region, s):
    return torch.ones_like(region)
""", NOTHING),
        ("the kit's context_weights (the library)", """
def context_weights(region, s):
    from course_utils.variations import context_weights as library
    return library(region, s)
""", NOTHING),
    ],
}
