# Reference outputs for tests/test_data2.cpp: torchvision F.affine on a tensor (NEAREST, fill 0),
# rebuilt from torch alone (torchvision is not installed): its _get_inverse_affine_matrix
# (centre 0, scale 1, shear 0), _gen_affine_grid and grid_sample(align_corners=False).
# Run: /usr/bin/python3 tests/reference/transforms_reference.py
import math, torch
import torch.nn.functional as F

def inverse_affine_matrix(angle, tx, ty):  # torchvision _get_inverse_affine_matrix, centre 0, scale 1, shear 0
    rot = math.radians(angle)
    a, b, c, d = math.cos(rot), -math.sin(rot), math.sin(rot), math.cos(rot)
    m = [d, -b, 0.0, -c, a, 0.0]
    m[2] += m[0] * (-tx) + m[1] * (-ty)
    m[5] += m[3] * (-tx) + m[4] * (-ty)
    return m

def affine(img, angle, tx, ty):  # torchvision F.affine on a tensor, NEAREST, fill 0
    c, h, w = img.shape
    theta = torch.tensor(inverse_affine_matrix(angle, tx, ty), dtype=torch.float32).reshape(1, 2, 3)
    d = 0.5
    base = torch.empty(1, h, w, 3)
    base[..., 0].copy_(torch.linspace(-w * 0.5 + d, w * 0.5 + d - 1, steps=w))
    base[..., 1].copy_(torch.linspace(-h * 0.5 + d, h * 0.5 + d - 1, steps=h).unsqueeze_(-1))
    base[..., 2].fill_(1)
    rescaled = theta.transpose(1, 2) / torch.tensor([0.5 * w, 0.5 * h])
    grid = base.view(1, h * w, 3).bmm(rescaled).view(1, h, w, 2)
    return F.grid_sample(img.unsqueeze(0), grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]

img = torch.arange(1, 31, dtype=torch.float32).reshape(1, 5, 6)
for angle, tx, ty in [(30, 1, -2), (-17.5, 0, 1), (90, 0, 0), (45, 2, 0)]:
    print(angle, tx, ty, [int(v) for v in affine(img, angle, tx, ty).flatten().tolist()])
