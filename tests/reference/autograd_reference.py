"""PyTorch float64 reference values for tests/test_autograd_api.cpp ("reference:" cases).

Run with Debian's PyTorch:  /usr/bin/python3 tests/reference/autograd_reference.py
Every tensor is a deterministic function of arange, so the C++ test builds the same
inputs without files. Prints C++ initialiser lists to paste into the test.
"""
import torch

torch.set_default_dtype(torch.float64)


def wave(n, a, b, scale):
    return scale * torch.sin(torch.arange(n, dtype=torch.float64) * a + b)


def mlp_params(out_dim):
    w1 = wave(15, 0.37, 0.1, 0.8).reshape(5, 3).requires_grad_()
    b1 = wave(5, 0.91, 0.3, 0.2).requires_grad_()
    w2 = wave(5 * out_dim, 0.53, 0.7, 0.6).reshape(out_dim, 5).requires_grad_()
    b2 = wave(out_dim, 1.3, 0.2, 0.1).requires_grad_()
    return [w1, b1, w2, b2]


def mlp(p, x):
    w1, b1, w2, b2 = p
    return torch.nn.functional.linear(torch.tanh(torch.nn.functional.linear(x, w1, b1)), w2, b2)


def show(name, t):
    vals = ", ".join(repr(float(v)) for v in t.detach().reshape(-1))
    print(f"// {name} {list(t.shape)}\n{{{vals}}}")


# WGAN-GP: the gradient penalty of a critic at points between real and fake samples
p = mlp_params(1)
real = wave(12, 0.29, 0.5, 1.5).reshape(4, 3)
fake = wave(12, 0.61, 1.1, 1.0).reshape(4, 3)
alpha = (torch.arange(4, dtype=torch.float64).reshape(4, 1) + 1) / 5
interp = (alpha * real + (1 - alpha) * fake).requires_grad_()
d = mlp(p, interp)
(g,) = torch.autograd.grad(d, interp, torch.ones_like(d), create_graph=True)
norms = torch.sqrt((g * g).sum(1))
gp = ((norms - 1) ** 2).mean()
gp.backward()
show("gp", gp)
for name, t in zip(["w1", "b1", "w2"], p):
    show("gp grad " + name, t.grad)
print("// gp grad b2:", p[3].grad)  # None: the penalty does not depend on the last bias

# Hessian-vector product of a cross-entropy loss with respect to all parameters
p = mlp_params(3)
x = wave(12, 0.43, 0.9, 1.2).reshape(4, 3)
target = torch.tensor([0, 2, 1, 2])
loss = torch.nn.functional.cross_entropy(mlp(p, x), target)
grads = torch.autograd.grad(loss, p, create_graph=True)
vs = [wave(t.numel(), 0.77, 0.4 + k, 1.0).reshape(t.shape) for k, t in enumerate(p)]
dot = sum((gi * vi).sum() for gi, vi in zip(grads, vs))
hv = torch.autograd.grad(dot, p)
show("loss", loss)
for name, t in zip(["w1", "b1", "w2", "b2"], hv):
    show("hvp " + name, t)
