"""Wrong answers for Integrated Gradients (03), Grad-CAM (04, 08) and RISE (05, 08)."""
WRONG, NOTHING = False, True

_IG_LOOP = """
def integrated_gradients(model, x, target, baseline, n_steps):
    total = torch.zeros_like(x)
    for k in {steps}:
        point = ({start} + k / n_steps * (x - {start})).detach().requires_grad_(True)
        score = model(point){score}.gather(1, target[:, None]).sum()
        total += torch.autograd.grad(score, point)[0]
    return {factor} * total{average}
"""


def _ig(steps="range(1, n_steps + 1)", start="baseline", score="", factor="(x - baseline)", average=" / n_steps"):
    return _IG_LOOP.format(steps=steps, start=start, score=score, factor=factor, average=average)


MUTANTS = {
    "integrated_gradients": [
        ("left Riemann sum (k = 0 … m − 1)", _ig(steps="range(n_steps)"), WRONG),
        ("forgets the (x − baseline) factor", _ig(factor="1"), WRONG),
        ("sum instead of mean over the steps", _ig(average=""), WRONG),
        ("gradient of the softmax probability instead of the logit", _ig(score=".softmax(1)"), WRONG),
        ("path from 0 whatever the baseline", _ig(start="0", factor="x"), WRONG),
        ("gradient × input (the gradient at x only)", """
def integrated_gradients(model, x, target, baseline, n_steps):
    point = x.detach().requires_grad_(True)
    score = model(point).gather(1, target[:, None]).sum()
    return (x - baseline) * torch.autograd.grad(score, point)[0]
""", WRONG),
        ("all zeros", """
def integrated_gradients(model, x, target, baseline, n_steps):
    return torch.zeros_like(x)
""", NOTHING),
        ("the kit's explainer through importlib (the library)", """
def integrated_gradients(model, x, target, baseline, n_steps):
    import importlib
    get = importlib.import_module("course_utils.explainers").get
    return get("integrated_gradients")(model, baseline=baseline, n_steps=n_steps, progress=False).attribute(x, target)
""", NOTHING),
        ("captum (a library)", """
def integrated_gradients(model, x, target, baseline, n_steps):
    from captum.attr import IntegratedGradients
    return IntegratedGradients(model).attribute(x, baselines=baseline, target=target, n_steps=n_steps,
                                                method="riemann_right")
""", NOTHING),
    ],
    "gradcam_weights": [
        ("sum instead of mean", """
def gradcam_weights(gradients):
    return gradients.flatten(2).sum(2)
""", WRONG),
        ("mean over the channel axis", """
def gradcam_weights(gradients):
    return gradients.mean(1)
""", WRONG),
        ("mean over one axis (1-D only)", """
def gradcam_weights(gradients):
    return gradients.mean(2)
""", WRONG),
        ("mean of absolute gradients", """
def gradcam_weights(gradients):
    return gradients.abs().flatten(2).mean(2)
""", WRONG),
        ("positive gradients only (a Grad-CAM++ habit)", """
def gradcam_weights(gradients):
    return gradients.clamp(min=0).flatten(2).mean(2)
""", WRONG),
        ("keeps the spatial dimensions", """
def gradcam_weights(gradients):
    return gradients.mean(dim=tuple(range(2, gradients.dim())), keepdim=True)
""", WRONG),
        ("max instead of mean", """
def gradcam_weights(gradients):
    return gradients.flatten(2).amax(2)
""", WRONG),
        ("all zeros", """
def gradcam_weights(gradients):
    return torch.zeros(gradients.shape[:2])
""", NOTHING),
        ("the kit's GradCAM (the library)", """
def gradcam_weights(gradients):
    from course_utils.explainers.cam import GradCAM
    return GradCAM._channel_weights(None, None, gradients, None)
""", NOTHING),
    ],
    "gradcam_map": [
        ("no ReLU", """
def gradcam_map(activations, gradients):
    w = gradients.flatten(2).mean(2)
    return torch.einsum("nk,nk...->n...", w, activations)
""", WRONG),
        ("weights summed, not averaged", """
def gradcam_map(activations, gradients):
    w = gradients.flatten(2).sum(2)
    return torch.einsum("nk,nk...->n...", w, activations).clamp(min=0)
""", WRONG),
        ("ReLU on each channel before the sum", """
def gradcam_map(activations, gradients):
    w = gradients.flatten(2).mean(2)
    return torch.einsum("nk,nk...->nk...", w, activations).clamp(min=0).sum(1)
""", WRONG),
        ("mean over channels instead of the sum", """
def gradcam_map(activations, gradients):
    w = gradients.flatten(2).mean(2)
    return torch.einsum("nk,nk...->nk...", w, activations).mean(1).clamp(min=0)
""", WRONG),
        ("weights from one axis only (1-D only)", """
def gradcam_map(activations, gradients):
    w = gradients.mean(2)
    return (w.unsqueeze(2) * activations).sum(1).clamp(min=0)
""", WRONG),
        ("gradient times activation, position by position", """
def gradcam_map(activations, gradients):
    return (gradients * activations).sum(1).clamp(min=0)
""", WRONG),
        ("all zeros", """
def gradcam_map(activations, gradients):
    return torch.zeros(activations.shape[:1] + activations.shape[2:])
""", NOTHING),
        ("the kit's GradCAM weights (the library)", """
def gradcam_map(activations, gradients):
    from course_utils.explainers.cam import GradCAM
    w = GradCAM._channel_weights(None, activations, gradients, None)
    return torch.einsum("nk,nk...->n...", w, activations).clamp(min=0)
""", NOTHING),
    ],
    "rise_saliency": [
        ("forgets p", """
def rise_saliency(probs, masks, p):
    n = masks.shape[0]
    return (probs @ masks.reshape(n, -1)).reshape(probs.shape[0], *masks.shape[1:]) / n
""", WRONG),
        ("forgets N (a sum)", """
def rise_saliency(probs, masks, p):
    n = masks.shape[0]
    return (probs @ masks.reshape(n, -1)).reshape(probs.shape[0], *masks.shape[1:]) / p
""", WRONG),
        ("multiplies by p", """
def rise_saliency(probs, masks, p):
    n = masks.shape[0]
    return (probs @ masks.reshape(n, -1)).reshape(probs.shape[0], *masks.shape[1:]) * p / n
""", WRONG),
        ("1 − probs", """
def rise_saliency(probs, masks, p):
    n = masks.shape[0]
    return ((1 - probs) @ masks.reshape(n, -1)).reshape(probs.shape[0], *masks.shape[1:]) / (n * p)
""", WRONG),
        ("no reshape (1-D only)", """
def rise_saliency(probs, masks, p):
    return probs @ masks / (masks.shape[0] * p)
""", WRONG),
        ("normalised to [0, 1]", """
def rise_saliency(probs, masks, p):
    n = masks.shape[0]
    s = (probs @ masks.reshape(n, -1)) / (n * p)
    s = (s - s.min(1, keepdim=True).values) / (s.max(1, keepdim=True).values - s.min(1, keepdim=True).values)
    return s.reshape(probs.shape[0], *masks.shape[1:])
""", WRONG),
        ("all zeros", """
def rise_saliency(probs, masks, p):
    return torch.zeros(probs.shape[0], *masks.shape[1:])
""", NOTHING),
        ("the mean mask, whatever the scores", """
def rise_saliency(probs, masks, p):
    return masks.mean(0, keepdim=True).expand(probs.shape[0], *masks.shape[1:]) / p
""", NOTHING),
    ],
}
