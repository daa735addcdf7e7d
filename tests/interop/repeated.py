"""Models with repeated submodules (and one without), for the import of blocks. The importer
runs this file, so it imports nothing from DL Studio."""

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.n_head, self.n_embd = n_head, n_embd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()  # noqa: N806
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, n_embd: int):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Layer(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = SelfAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGPT(nn.Module):
    """nanoGPT's GPT-2 with 4 layers in an nn.ModuleList, named submodules throughout."""

    def __init__(self, vocab: int = 40, block_size: int = 16, n_embd: int = 16, n_head: int = 2,
                 n_layer: int = 4):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([Layer(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(0, idx.size(1), dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for layer in self.h:
            x = layer(x)
        return self.lm_head(self.ln_f(x))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


class Once(nn.Module):
    """One submodule of its own class, called once: nothing repeats."""

    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class Twice(nn.Module):
    """Calls its Linear twice: the second call ties to the first."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.fc(x)))


class TiedLayers(nn.Module):
    """Three layers that each call their own Linear twice."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(*(Twice() for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Scaled(nn.Module):
    def __init__(self, shared: nn.Linear):
        super().__init__()
        self.shared = shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(x) * 0.5


class SharedAcrossLayers(nn.Module):
    """Three layers that call one Linear they all hold: the calls tie across the layers."""

    def __init__(self):
        super().__init__()
        shared = nn.Linear(8, 8)
        self.layers = nn.ModuleList([Scaled(shared) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class Widening(nn.Module):
    """Chained layers of one class whose widths differ: one block, a node per layer."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([Encoder(), Head(16, 32), Head(32, 32), Head(32, 8)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class Head(nn.Module):
    def __init__(self, width: int, out: int):
        super().__init__()
        self.proj = nn.Linear(width, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x))


class Heads(nn.Module):
    """Three heads side by side on one input, not chained: three block nodes, no repeat."""

    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleList([Head(8, 4) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(x) for head in self.heads], dim=-1)


class Halves(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.fc(x).chunk(2, dim=-1)
        return a, b


class Crossed(nn.Module):
    """Two calls of a two-output module whose outputs are read in different orders."""

    def __init__(self):
        super().__init__()
        self.halves = nn.ModuleList([Halves(), Halves()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.halves[0](x)
        c, d = self.halves[1](x)
        return a * d + b * c
