"""PyTorch float64 reference values for tests/test_conv2.cpp.

Run with Debian's PyTorch (1.13):  /usr/bin/python3 tests/reference/conv2_reference.py
Every tensor is a deterministic function of arange (wave below), so the C++ test builds
the same inputs without files. Per case, the op's output y and the gradients of
loss = Σ y · wave(numel(y), 0.7, 0.3, 1) with respect to each input, printed as C++
initialiser lists {"name", {y...}, {{d input...}, {d weight...}, {d bias...}}} to paste.
"""
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def wave(n, a, b, scale):
    return scale * torch.sin(torch.arange(n, dtype=torch.float64) * a + b)


def lst(t):
    return "{" + ", ".join(repr(float(v)) for v in t.reshape(-1)) + "}"


def case(name, fn, *inputs):
    inputs = [t.clone().requires_grad_() for t in inputs]
    y = fn(*inputs)
    loss = (y * wave(y.numel(), 0.7, 0.3, 1.0).reshape(y.shape)).sum()
    grads = torch.autograd.grad(loss, inputs)
    g = ", ".join(lst(t) for t in grads)
    print(f'    {{"{name}", {list(y.shape)}, {lst(y)}, {{{g}}}}},'.replace("[", "{").replace("]", "}"))


# conv2d: rect kernel 3x2, stride (2, 1), padding (1, 1), dilation (2, 1), groups 2
x = wave(2 * 4 * 5 * 4, 0.37, 0.1, 1.0).reshape(2, 4, 5, 4)
w = wave(4 * 2 * 3 * 2, 0.91, 0.4, 0.5).reshape(4, 2, 3, 2)
b = wave(4, 1.3, 0.2, 0.3)
case("conv2d groups", lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 1), dilation=(2, 1), groups=2),
     x, w, b)
# conv2d: padding (1, 2), stride 2 on both, no groups
x2 = wave(1 * 2 * 6 * 5, 0.53, 0.7, 1.0).reshape(1, 2, 6, 5)
w2 = wave(3 * 2 * 2 * 3, 0.29, 0.9, 0.5).reshape(3, 2, 2, 3)
b2 = wave(3, 0.8, 0.1, 0.3)
case("conv2d pad12", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=(1, 2)), x2, w2, b2)

# conv_transpose2d: stride 2, padding 1, output_padding 1, groups 2, dilation (1, 2)
xt = wave(1 * 4 * 3 * 2, 0.41, 0.5, 1.0).reshape(1, 4, 3, 2)
wt = wave(4 * 3 * 3 * 2, 0.67, 0.2, 0.5).reshape(4, 3, 3, 2)
bt = wave(6, 1.1, 0.3, 0.3)
case("conv_transpose2d groups",
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2)),
     xt, wt, bt)
# output_padding 1 >= stride 1, allowed because < dilation 2
xd = wave(1 * 2 * 3 * 3, 0.59, 0.2, 1.0).reshape(1, 2, 3, 3)
wd = wave(2 * 2 * 3 * 3, 0.33, 0.6, 0.5).reshape(2, 2, 3, 3)
bd = wave(2, 0.7, 0.4, 0.3)
case("conv_transpose2d dilation", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=1, padding=1, output_padding=1,
                                                                      dilation=2), xd, wd, bd)

# avg_pool2d on [1, 2, 5, 7]
xp = wave(1 * 2 * 5 * 7, 0.43, 0.3, 1.0).reshape(1, 2, 5, 7)
case("avg_pool2d k3 s2 p1", lambda x: F.avg_pool2d(x, 3, 2, 1), xp)
case("avg_pool2d k3 s2 p1 exclude", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), xp)
case("avg_pool2d k(3,2) s(2,3) p1 ceil", lambda x: F.avg_pool2d(x, (3, 2), (2, 3), 1, ceil_mode=True), xp)
case("avg_pool2d k(3,2) s(2,3) p1 ceil exclude",
     lambda x: F.avg_pool2d(x, (3, 2), (2, 3), 1, ceil_mode=True, count_include_pad=False), xp)
case("avg_pool2d k2 ceil", lambda x: F.avg_pool2d(x, 2, ceil_mode=True), xp)

# adaptive_avg_pool2d: 7x5 -> 3x2 (uneven, overlapping bins), 6x4 -> 3x2 (even)
xa = wave(1 * 2 * 7 * 5, 0.47, 0.9, 1.0).reshape(1, 2, 7, 5)
case("adaptive_avg_pool2d 7x5 to 3x2", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), xa)
xe = wave(1 * 2 * 6 * 4, 0.47, 0.9, 1.0).reshape(1, 2, 6, 4)
case("adaptive_avg_pool2d 6x4 to 3x2", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), xe)

# module reprs
print("//", torch.nn.Conv2d(1, 6, 5, padding=2))
print("//", torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2, bias=False))
print("//", torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2))
print("//", torch.nn.AvgPool2d(3, 2, 1), torch.nn.AvgPool2d((3, 2)), torch.nn.AdaptiveAvgPool2d((3, 2)),
      torch.nn.Identity())
