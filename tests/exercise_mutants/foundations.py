"""Wrong answers for notebooks 00–02."""
WRONG, NOTHING = False, True

MUTANTS = {
    "conv_output_length": [
        ("forgets the padding", """
def conv_output_length(length, kernel_size, stride, padding):
    return (length - kernel_size) // stride + 1
""", WRONG),
        ("pads one side only", """
def conv_output_length(length, kernel_size, stride, padding):
    return (length + padding - kernel_size) // stride + 1
""", WRONG),
        ("off by one (no + 1)", """
def conv_output_length(length, kernel_size, stride, padding):
    return (length + 2 * padding - kernel_size) // stride
""", WRONG),
        ("true division instead of floor", """
def conv_output_length(length, kernel_size, stride, padding):
    return (length + 2 * padding - kernel_size) / stride + 1
""", WRONG),
        ("rounds up", """
def conv_output_length(length, kernel_size, stride, padding):
    return -(-(length + 2 * padding - kernel_size) // stride) + 1
""", WRONG),
        ("ignores the stride", """
def conv_output_length(length, kernel_size, stride, padding):
    return length + 2 * padding - kernel_size + 1
""", WRONG),
        ("returns the input length", """
def conv_output_length(length, kernel_size, stride, padding):
    return length
""", NOTHING),
        ("measures a real Conv1d (the library)", """
def conv_output_length(length, kernel_size, stride, padding):
    conv = torch.nn.Conv1d(1, 1, kernel_size, stride=stride, padding=padding)
    return conv(torch.zeros(1, 1, length)).shape[-1]
""", NOTHING),
    ],
    "receptive_field": [
        ("sum of the kernel sizes", """
def receptive_field(kernel_sizes, strides):
    return sum(kernel_sizes)
""", WRONG),
        ("ignores the strides", """
def receptive_field(kernel_sizes, strides):
    return 1 + sum(k - 1 for k in kernel_sizes)
""", WRONG),
        ("multiplies by the layer's own stride (off by one layer)", """
def receptive_field(kernel_sizes, strides):
    field, jump = 1, 1
    for k, s in zip(kernel_sizes, strides):
        jump *= s
        field += (k - 1) * jump
    return field
""", WRONG),
        ("starts from 0 instead of 1", """
def receptive_field(kernel_sizes, strides):
    field, jump = 0, 1
    for k, s in zip(kernel_sizes, strides):
        field += (k - 1) * jump
        jump *= s
    return field
""", WRONG),
        ("kernel sizes times strides", """
def receptive_field(kernel_sizes, strides):
    field = 1
    for k, s in zip(kernel_sizes, strides):
        field += (k - 1) * s
    return field
""", WRONG),
        ("a constant", """
def receptive_field(kernel_sizes, strides):
    return 13
""", NOTHING),
        ("measures it with torch (the library)", """
def receptive_field(kernel_sizes, strides):
    layers = [torch.nn.Conv1d(1, 1, k, stride=s, bias=False) for k, s in zip(kernel_sizes, strides)]
    for conv in layers:
        torch.nn.init.ones_(conv.weight)
    x = torch.zeros(1, 1, 300, requires_grad=True)
    torch.nn.Sequential(*layers)(x)[0, 0, 0].backward()
    return int((x.grad != 0).sum())
""", NOTHING),
    ],
    "confusion_counts": [
        ("rows and columns swapped", """
def confusion_counts(y_true, y_pred, n_classes):
    return torch.bincount(y_pred * n_classes + y_true, minlength=n_classes * n_classes).view(n_classes, n_classes)
""", WRONG),
        ("no minlength (breaks when the last classes never occur)", """
def confusion_counts(y_true, y_pred, n_classes):
    return torch.bincount(y_true * n_classes + y_pred).view(n_classes, n_classes)
""", WRONG),
        ("float counts", """
def confusion_counts(y_true, y_pred, n_classes):
    flat = torch.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.view(n_classes, n_classes).float()
""", WRONG),
        ("rows normalised to fractions", """
def confusion_counts(y_true, y_pred, n_classes):
    counts = torch.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).view(n_classes, n_classes)
    return counts / counts.sum(1, keepdim=True).clamp(min=1)
""", WRONG),
        ("counts only the correct predictions", """
def confusion_counts(y_true, y_pred, n_classes):
    counts = torch.zeros(n_classes, n_classes, dtype=torch.long)
    for t, p in zip(y_true.tolist(), y_pred.tolist()):
        if t == p:
            counts[t, t] += 1
    return counts
""", WRONG),
        ("one class too few", """
def confusion_counts(y_true, y_pred, n_classes):
    k = n_classes - 1
    return torch.bincount((y_true * k + y_pred).clamp(max=k * k - 1), minlength=k * k).view(k, k)
""", WRONG),
        ("all zeros", """
def confusion_counts(y_true, y_pred, n_classes):
    return torch.zeros(n_classes, n_classes, dtype=torch.long)
""", NOTHING),
        ("the kit's plotting helper (the library)", """
def confusion_counts(y_true, y_pred, n_classes):
    import importlib
    return torch.as_tensor(importlib.import_module("course_utils.plotting").confusion_counts(y_true, y_pred, n_classes))
""", NOTHING),
        ("scikit-learn (a library)", """
def confusion_counts(y_true, y_pred, n_classes):
    from sklearn.metrics import confusion_matrix
    return torch.as_tensor(confusion_matrix(y_true.numpy(), y_pred.numpy(), labels=list(range(n_classes))))
""", NOTHING),
    ],
}
