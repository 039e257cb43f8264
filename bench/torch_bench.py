#!/usr/bin/env python3
"""The same benchmarks as bench/ops and bench/train, in PyTorch (2 threads).

Prints rows named exactly like tape's so bench/compare.sh can pair them.
usage: torch_bench.py [--data DIR] [--epochs N] [--only NAME]
"""
import argparse, gzip, os, resource, struct, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get("TAPE_NUM_THREADS", "2")))


def row(name, value, unit):
    print(f"{name:<44} {value:12.3f} {unit}", flush=True)


def median(f, reps=20, warmup=3):
    for _ in range(warmup):
        f()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return sorted(t)[len(t) // 2]


def load_mnist(d):
    try:
        with open(os.path.join(d, "train-images-idx3-ubyte"), "rb") as f:
            _, n, r, c = struct.unpack(">IIII", f.read(16))
            x = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, 1, r, c).astype(np.float32) / 255
        with open(os.path.join(d, "train-labels-idx1-ubyte"), "rb") as f:
            f.read(8)
            y = np.frombuffer(f.read(), dtype=np.uint8).astype(np.int64)
        return torch.from_numpy(x), torch.from_numpy(y)
    except OSError:
        print("(MNIST not found — random data of the same shape)")
        return torch.rand(60000, 1, 28, 28), torch.arange(60000) % 10


def mlp(sizes):
    layers = [nn.Flatten()]
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    net = nn.Sequential(*layers)
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.Tanh(), nn.Linear(120, 84),
                         nn.Tanh(), nn.Linear(84, 10))


def epoch_seconds(net, x, y, batch, lr, epochs):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    later = sorted(times[1:] if len(times) > 1 else times)
    return later[len(later) // 2]


def run(name, net, x, y, batch, lr, epochs):
    s = epoch_seconds(net, x, y, batch, lr, epochs)
    row(name + " epoch", s, "s")
    row(name + " throughput", len(x) / s, "samples/s")
    row(name + " peak RSS so far", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MB")


def ops():
    x = torch.randn(1, 16, requires_grad=True)
    w, b = torch.randn(1, 16), torch.randn(1, 16)

    def chain():
        y = x
        for _ in range(50):
            y = y * w + b
        y.sum().backward()
    row("eager overhead, fwd+bwd per small op", median(chain, 200, 20) / 100 * 1e6, "us")

    for n in (50, 370):
        xx = torch.randn(1000, 784)
        ww = (torch.randn(n, 784) * 0.05).requires_grad_()
        bb = torch.zeros(n, requires_grad=True)
        gg = torch.ones(1000, n)
        t = median(lambda: F.linear(xx, ww, bb).backward(gg))
        row(f"linear 1000x784x{n} fwd+bwd (tape)", t * 1e3, "ms")

    for name, c, hw, o, need_dx in (("conv1 1000x1x28x28 -> 6@5x5", 1, 28, 6, False),
                                    ("conv2 1000x6x12x12 -> 16@5x5", 6, 12, 16, True)):
        xx = torch.randn(1000, c, hw, hw, requires_grad=need_dx)
        ww = (torch.randn(o, c, 5, 5) * 0.1).requires_grad_()
        bb = torch.zeros(o, requires_grad=True)
        gg = torch.ones(1000, o, hw - 4, hw - 4)
        t = median(lambda: F.conv2d(xx, ww, bb).backward(gg), 30, 3)
        row(f"{name} fwd+bwd (tape)", t * 1e3, "ms")
    a, b2 = torch.randn(1024, 1024), torch.randn(1024, 1024)
    t = median(lambda: a @ b2, 10, 2)
    row("matmul 1024^3 (tape)", 2 * 1024 ** 3 / t / 1e9, "GFLOP/s")


def small_batch():
    """mlp2 at batch 1: forward with autograd recording, and under inference_mode."""
    torch.manual_seed(0)
    net = mlp([784, 50, 10]).eval()
    x = torch.rand(1, 1, 28, 28)
    row("mlp2 batch 1 forward (recording)", median(lambda: net(x), 2000, 200) * 1e6, "us")

    def infer():
        with torch.inference_mode():
            net(x)
    row("mlp2 batch 1 forward_inference", median(infer, 2000, 200) * 1e6, "us")


def blas_in_use():
    """The BLAS library this process mapped (compare.sh selects OpenMP OpenBLAS)."""
    torch.ones(2, 2) @ torch.ones(2, 2)  # make sure the BLAS is loaded
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "libblas" in line or "libopenblas" in line}
    return ", ".join(sorted(paths)) or "unknown"


def allocator_in_use():
    """malloc's library: tcmalloc when compare.sh preloaded it, else glibc."""
    with open("/proc/self/maps") as f:
        for line in f:
            for name in ("tcmalloc", "jemalloc"):
                if name in line:
                    return line.split()[-1]
    return "glibc malloc"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/mnist")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--only", default="")
    a = p.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}: {torch.get_num_threads()} threads, BLAS {blas_in_use()}, allocator {allocator_in_use()}")
    if a.only in ("", "ops"):
        ops()
        if a.only == "ops":
            return
    if a.only in ("", "infer"):
        small_batch()
        if a.only == "infer":
            return
    x, y = load_mnist(a.data)
    if a.only in ("", "mlp2"):
        run("mlp2 784-50-10 batch 1000", mlp([784, 50, 10]), x, y, 1000, 0.01, a.epochs)
    if a.only in ("", "mlp4"):
        run("mlp4 784-370-115-50-10 batch 1000", mlp([784, 370, 115, 50, 10]), x, y, 1000, 0.01, a.epochs)
    if a.only in ("", "lenet5"):
        run("lenet5 batch 2500", lenet5(), x, y, 2500, 0.001, a.epochs)
    if a.only in ("", "lenet5_64"):
        run("lenet5 batch 64", lenet5(), x, y, 64, 0.001, min(a.epochs, 3))


if __name__ == "__main__":
    main()
