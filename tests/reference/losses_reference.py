"""PyTorch float64 reference values for tests/test_loss2.cpp.

Run with Debian's PyTorch (1.13):  /usr/bin/python3 tests/reference/losses_reference.py
Every tensor is a deterministic function of arange (wave below), so the C++ test builds
the same inputs without files. Prints, per case, the loss and the gradients of the loss
with respect to the input and (for the elementwise losses) the target, as C++
initialiser lists {"name", loss, {d input...}, {d target...}} to paste into the test.
"""
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def wave(n, a, b, scale):
    return scale * torch.sin(torch.arange(n, dtype=torch.float64) * a + b)


def show(name, loss, grads):
    def lst(t):
        return "{" + ", ".join(repr(float(v)) for v in t.reshape(-1)) + "}"
    g = ", ".join(lst(t) for t in grads)
    print(f'{{"{name}", {float(loss)!r}, {g}}},')


def pair(name, fn, x, t):
    x = x.clone().requires_grad_()
    t = t.clone().requires_grad_()
    loss = fn(x, t)
    gx, gt = torch.autograd.grad(loss, [x, t])
    show(name, loss, [gx, gt])


# elementwise losses: input and target [3, 4]
x_bce = wave(12, 0.9, 0.0, 3.0).reshape(3, 4)      # x[0, 0] = 0 exactly (the kink of max/|.|)
x_big = wave(12, 0.9, 0.0, 40.0).reshape(3, 4)     # |x| up to 40: the stable form
t_bce = (0.5 + wave(12, 1.3, 0.2, 0.5)).reshape(3, 4)
x = wave(12, 0.9, 0.1, 1.5).reshape(3, 4)
t = wave(12, 1.7, 0.4, 1.0).reshape(3, 4)
pair("bce_with_logits", F.binary_cross_entropy_with_logits, x_bce, t_bce)
pair("bce_with_logits large", F.binary_cross_entropy_with_logits, x_big, t_bce)
pair("l1_loss", F.l1_loss, x, t)
pair("smooth_l1_loss beta 1", lambda a, b: F.smooth_l1_loss(a, b, beta=1.0), x, t)
pair("smooth_l1_loss beta 0.5", lambda a, b: F.smooth_l1_loss(a, b, beta=0.5), x, t)
pair("smooth_l1_loss beta 0", lambda a, b: F.smooth_l1_loss(a, b, beta=0.0), x, t)
pair("huber_loss delta 1", lambda a, b: F.huber_loss(a, b, delta=1.0), x, t)
pair("huber_loss delta 0.7", lambda a, b: F.huber_loss(a, b, delta=0.7), x, t)

# cross_entropy: logits [6, 5], Int64 targets (one -100), weight [5]
logits = wave(30, 0.37, 0.2, 2.0).reshape(6, 5)
target = torch.tensor([0, 3, 2, 4, 1, 3])
target_ignored = torch.tensor([0, 3, -100, 4, 1, 3])
weight = 0.6 + wave(5, 1.1, 0.3, 0.4)
probs = torch.softmax(wave(30, 0.53, 0.7, 1.0).reshape(6, 5), 1)


def ce(name, tgt, **kw):
    x = logits.clone().requires_grad_()
    loss = F.cross_entropy(x, tgt, **kw)
    (gx,) = torch.autograd.grad(loss, [x])
    show(name, loss, [gx, torch.zeros(0)])


ce("ce plain", target)
ce("ce ignore -100", target_ignored)
ce("ce ignore_index 3", target, ignore_index=3)
ce("ce weight", target, weight=weight)
ce("ce weight ignore", target_ignored, weight=weight)
ce("ce smoothing", target, label_smoothing=0.1)
ce("ce smoothing ignore", target_ignored, label_smoothing=0.1)
ce("ce smoothing weight ignore", target_ignored, weight=weight, label_smoothing=0.2)
ce("ce probs weight smoothing", probs, weight=weight, label_smoothing=0.15)
