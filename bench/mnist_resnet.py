#!/usr/bin/env python3
"""examples/mnist_resnet's recipe in PyTorch, for the README's side-by-side row.

The same network (stem 3x3 conv + BN + ReLU, one basic residual block per stage
of widths 16-32-64, stride 2 from the second stage, global average pool,
linear), torchvision's ResNet initialisation, SGD (momentum 0.9, weight decay
5e-4), OneCycleLR stepped per batch with peak lr 0.1 (no momentum cycling, as
tape's OneCycleLR), batch 128, and the same augmentation as tape's trainer: a
random affine map per image (rotation +-12 deg, scale 0.85-1.15, shear +-0.2,
shift +-2.5 px, bilinear) and, with chance 1/4 each, bolder (3x3 max) or thinner
(half-way to the 4-neighbour min) strokes. Prints one line per epoch (seconds of
training, test accuracy) like tape's trainer.

usage: /usr/bin/python3 bench/mnist_resnet.py [--data DIR] [--epochs N] [--threads N]
"""
import argparse, math, os, struct, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load(d, split):
    prefix = "train" if split == "train" else "t10k"
    with open(os.path.join(d, f"{prefix}-images-idx3-ubyte"), "rb") as f:
        _, n, r, c = struct.unpack(">IIII", f.read(16))
        x = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, 1, r, c).astype(np.float32) / 255
    with open(os.path.join(d, f"{prefix}-labels-idx1-ubyte"), "rb") as f:
        f.read(8)
        y = np.frombuffer(f.read(), dtype=np.uint8).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


def resnet(widths):
    layers = [nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    cin = widths[0]
    for i, w in enumerate(widths):
        layers.append(Block(cin, w, 1 if i == 0 else 2))
        cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


def augment(x, g):
    n = x.shape[0]
    rot = (2 * torch.rand(n, generator=g) - 1) * 12 * math.pi / 180
    scale = 0.85 + 0.3 * torch.rand(n, generator=g)
    shear = 0.2 * (2 * torch.rand(n, generator=g) - 1)
    t = 2.5 * (2 * torch.rand(n, 2, generator=g) - 1) / 14  # pixels -> normalised coordinates
    # output → input map (inverse of p' = t + s·R·Sh·p), as affine_grid wants
    c, s = torch.cos(rot), torch.sin(rot)
    rinv = torch.stack([torch.stack([c, s], 1), torch.stack([-s, c], 1)], 1)
    shinv = torch.zeros(n, 2, 2)
    shinv[:, 0, 0] = 1
    shinv[:, 0, 1] = -shear
    shinv[:, 1, 1] = 1
    a = shinv @ rinv / scale[:, None, None]
    theta = torch.cat([a, -(a @ t[:, :, None])], 2)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    r = torch.rand(n, generator=g)
    bold = F.max_pool2d(x, 3, 1, 1)
    pad = F.pad(x, (1, 1, 1, 1))
    cross = torch.minimum(torch.minimum(pad[:, :, 1:-1, :-2], pad[:, :, 1:-1, 2:]),
                          torch.minimum(pad[:, :, :-2, 1:-1], pad[:, :, 2:, 1:-1]))
    thin = 0.5 * (x + torch.minimum(x, cross))
    x = torch.where((r < 0.25)[:, None, None, None], bold, x)
    return torch.where(((r >= 0.25) & (r < 0.5))[:, None, None, None], thin, x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = load(args.data, "train")
    xt, yt = load(args.data, "test")
    net = resnet([16, 32, 64])
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    steps = math.ceil(len(x) / args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps,
                                                cycle_momentum=False)
    g = torch.Generator().manual_seed(1)
    total = 0.0
    for epoch in range(1, args.epochs + 1):
        net.train()
        perm = torch.randperm(len(x), generator=g)
        t0 = time.perf_counter()
        loss_sum = 0.0
        for i in range(0, len(x), args.batch_size):
            idx = perm[i:i + args.batch_size]
            loss = F.cross_entropy(net(augment(x[idx], g)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
        secs = time.perf_counter() - t0
        total += secs
        net.eval()
        with torch.no_grad():
            correct = sum((net(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item() for i in range(0, len(xt), 1000))
        print(f"epoch {epoch:2d}/{args.epochs}  train_loss {loss_sum / len(x):.4f}  test_acc {100 * correct / len(xt):.2f}%"
              f"  {secs:.2f}s  {int(len(x) / secs):,} samples/s", flush=True)
    print(f"final test accuracy: {100 * correct / len(xt):.2f}%  ({total:.0f}s of training)")


if __name__ == "__main__":
    main()
