#!/usr/bin/python3
"""PyTorch twin of examples/char_rnn (same recipe, same defaults) for timing and
loss comparisons: Embedding(V, E) -> LSTM(E, H, layers) -> Dropout -> Linear(H, V),
random windows of T+1 characters from the first 90 % of the text, Adam, gradient
norm clipped at 5, validation over the last 10 % in non-overlapping windows.
Prints one line per epoch and a final `best val_loss X (epoch E)  epoch time S s`.
Run with /usr/bin/python3 (torch 1.13); 2 threads unless --threads says otherwise."""
import argparse, math, time
import torch, torch.nn as nn, torch.nn.functional as F

LICENCES = ",".join("/usr/share/common-licenses/" + f for f in ["GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0", "MPL-2.0"])

p = argparse.ArgumentParser()
p.add_argument("--text", default=LICENCES)
p.add_argument("--epochs", type=int, default=20)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--seq-len", type=int, default=64)
p.add_argument("--embed", type=int, default=64)
p.add_argument("--hidden", type=int, default=256)
p.add_argument("--layers", type=int, default=1)
p.add_argument("--dropout", type=float, default=0.3)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--cell", default="lstm")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

data = b"".join(open(f, "rb").read() for f in a.text.split(","))
vocab = sorted(set(data))
index = {b: i for i, b in enumerate(vocab)}
ids = torch.tensor([index[b] for b in data], dtype=torch.long)
split = len(ids) - len(ids) // 10
train, val = ids[:split], ids[split:]
T, N, V = a.seq_len, a.batch_size, len(vocab)


class CharRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(V, a.embed)
        rnn = nn.LSTM if a.cell == "lstm" else nn.GRU
        self.rnn = rnn(a.embed, a.hidden, a.layers, dropout=a.dropout if a.layers > 1 else 0.0)
        self.drop = nn.Dropout(a.dropout)
        self.head = nn.Linear(a.hidden, V)

    def forward(self, x):  # x [T, N]
        y, _ = self.rnn(self.embed(x))
        return self.head(self.drop(y))


model = CharRNN()
opt = torch.optim.Adam(model.parameters(), lr=a.lr)
batches = math.ceil(len(train) / (T * N))


def validate():
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        w = (len(val) - 1) // T  # non-overlapping windows, one batch
        x = val[: w * T].view(w, T).t()
        y = val[1 : w * T + 1].view(w, T).t()
        total = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1), reduction="sum").item()
        count = y.numel()
    model.train()
    return total / count


best, best_epoch, times = float("inf"), 0, []
for epoch in range(1, a.epochs + 1):
    g = torch.Generator().manual_seed(a.seed * 1000003 + epoch)
    t0, loss_sum = time.time(), 0.0
    for _ in range(batches):
        starts = torch.randint(0, len(train) - T, (N,), generator=g)
        win = torch.stack([train[s : s + T + 1] for s in starts.tolist()], 1)  # [T+1, N]
        logits = model(win[:-1])
        loss = F.cross_entropy(logits.reshape(-1, V), win[1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        loss_sum += loss.item()
    secs = time.time() - t0
    times.append(secs)
    v = validate()
    if v < best:
        best, best_epoch = v, epoch
    print(f"epoch {epoch}/{a.epochs}  train_loss {loss_sum / batches:.4f}  val_loss {v:.4f}  {secs:.1f}s", flush=True)
print(f"best val_loss {best:.4f} (epoch {best_epoch})  epoch time {sum(times) / len(times):.2f} s  total {sum(times):.1f} s")
