"""PyTorch float64 reference values for tests/test_norm.cpp.

Run with Debian's PyTorch (1.13):  /usr/bin/python3 tests/reference/norm_reference.py
Every tensor is a deterministic function of arange (wave below), so the C++ test builds
the same inputs without files. Each case prints, as a C++ initialiser
{"name", {y}, {dx}, {dweight}, {dbias}}, the output y = f(x, weight, bias) and the
gradients of sum(y * gy) (gy = wave(numel, 0.7, 0.3, 1.0)). Batch-norm module cases
also print the running statistics after two training steps and the eval-mode output.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def wave(n, a, b, scale):
    return scale * torch.sin(torch.arange(n, dtype=torch.float64) * a + b)


def lst(t):
    return "{" + ", ".join(repr(float(v)) for v in t.reshape(-1)) + "}"


def case(name, fn, x, w, b):
    x = x.clone().requires_grad_()
    w = w.clone().requires_grad_()
    b = b.clone().requires_grad_()
    y = fn(x, w, b)
    gy = wave(y.numel(), 0.7, 0.3, 1.0).reshape(y.shape)
    dx, dw, db = torch.autograd.grad((y * gy).sum(), [x, w, b])
    print(f'{{"{name}", {lst(y)}, {lst(dx)}, {lst(dw)}, {lst(db)}}},')


def inputs(shape, c_shape):
    n = 1
    for s in shape:
        n *= s
    c = 1
    for s in c_shape:
        c *= s
    x = wave(n, 0.9, 0.1, 2.0).reshape(shape) + 0.5
    w = (1.0 + wave(c, 1.3, 0.2, 0.5)).reshape(c_shape)
    b = wave(c, 0.4, 0.5, 0.3).reshape(c_shape)
    return x, w, b


print("// cases: {name, y, dx, dweight, dbias}")
# batch norm, training (batch statistics) and eval (running statistics 0.3 + wave, 1.2 + wave)
for name, shape in [("bn [4, 3]", (4, 3)), ("bn [3, 2, 4]", (3, 2, 4)), ("bn [2, 3, 2, 3]", (2, 3, 2, 3))]:
    c = shape[1]
    x, w, b = inputs(shape, (c,))
    case(name + " train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), x, w, b)
    rm = 0.3 + wave(c, 0.8, 0.0, 0.2)
    rv = 1.2 + wave(c, 0.6, 0.0, 0.5)
    case(name + " eval", lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), x, w, b)
# layer norm over the last dim and over the last two; group norm
x, w, b = inputs((4, 5), (5,))
case("ln [4, 5] over [5]", lambda x, w, b: F.layer_norm(x, [5], w, b), x, w, b)
x, w, b = inputs((2, 3, 4), (3, 4))
case("ln [2, 3, 4] over [3, 4]", lambda x, w, b: F.layer_norm(x, [3, 4], w, b), x, w, b)
x, w, b = inputs((2, 6, 3), (6,))
case("gn [2, 6, 3] 3 groups", lambda x, w, b: F.group_norm(x, 3, w, b), x, w, b)
x, w, b = inputs((3, 4, 2, 2), (4,))
case("gn [3, 4, 2, 2] 2 groups", lambda x, w, b: F.group_norm(x, 2, w, b), x, w, b)
x, w, b = inputs((2, 4, 3), (4,))
case("gn [2, 4, 3] 1 group eps 0.1", lambda x, w, b: F.group_norm(x, 1, w, b, eps=0.1), x, w, b)

print("// modules: {name, running_mean, running_var after two training steps, eval output}")
for name, m, shape in [("BatchNorm1d", nn.BatchNorm1d(3, momentum=0.2), (5, 3)),
                       ("BatchNorm2d", nn.BatchNorm2d(2), (3, 2, 2, 2))]:
    n = 1
    for s in shape:
        n *= s
    m(wave(n, 0.9, 0.1, 2.0).reshape(shape) + 0.5)
    m(wave(n, 0.5, 0.7, 1.5).reshape(shape) - 0.25)
    m.eval()
    y = m(wave(n, 1.1, 0.2, 1.0).reshape(shape))
    print(f'{{"{name}", {lst(m.running_mean)}, {lst(m.running_var)}, {lst(y.detach())}}},  '
          f'// num_batches_tracked {int(m.num_batches_tracked)}')
