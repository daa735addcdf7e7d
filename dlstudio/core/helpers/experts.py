"""Experts family helpers: MixtureOfExperts, a sparse mixture of expert MLPs.

torch and nn come through :mod:`dlstudio.core.modules`, the one module that imports torch
for the helpers, so the names match those of an exported file.
"""

from __future__ import annotations

from dlstudio.core.modules import nn, support, torch


@support
class MixtureOfExperts(nn.Module):
    """A sparse mixture of expert MLPs on the last dimension (Mixtral style).

    A bias-free router scores the num_experts experts for every token; each token goes
    to its top_k experts only, and their outputs are mixed with weights that are the
    softmax of those top_k scores. With top_k=1 that weight is always 1, so the router
    then learns from the load-balancing loss alone.

    forward returns the output and the load-balancing loss of the Switch Transformer:
    num_experts x sum over experts of (share of the tokens routed there, counting each
    of a token's top_k choices) x (mean router probability). It equals top_k when the
    load or the mean probabilities are uniform, and grows toward num_experts as the
    routing collapses onto a few experts.

    The (token, choice) pairs are sorted by expert, so each expert reads one slice; an
    expert without tokens runs on zero rows, so every weight gets a gradient. Rows move
    by index_copy only (its gradient is a gather), never by a scatter-add. Under
    torch.export or a TorchScript trace every expert runs on every token instead, and
    each token gathers its top_k outputs: no size depends on the data (slower, the same
    numbers).
    """

    def __init__(
        self,
        embed_dim: int,
        num_experts: int = 4,
        top_k: int = 2,
        hidden_dim: int | None = None,
        activation: str = "gelu",
        bias: bool = True,
    ) -> None:
        super().__init__()
        hidden_dim = hidden_dim or 4 * embed_dim
        act = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}[activation]
        self.embed_dim = embed_dim
        self.num_experts = num_experts
        self.top_k = top_k
        self.router = nn.Linear(embed_dim, num_experts, bias=False)
        self.experts = nn.ModuleList(
            nn.Sequential(
                nn.Linear(embed_dim, hidden_dim, bias=bias),
                act(),
                nn.Linear(hidden_dim, embed_dim, bias=bias),
            )
            for _ in range(num_experts)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = x.reshape(-1, x.size(-1))
        logits = self.router(tokens)
        scores, chosen = logits.topk(self.top_k, dim=-1)
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            y, counts = self.dense(tokens, chosen)
        else:
            y, counts = self.sparse(tokens, chosen)
        gates = scores.softmax(dim=-1).unsqueeze(-1)
        out = (y * gates).sum(dim=1).to(x.dtype)
        return out.reshape(x.shape), self.balance_loss(logits, counts, x.dtype)

    def sparse(
        self, tokens: torch.Tensor, chosen: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each token's chosen experts' outputs [tokens, top_k, embed_dim], each expert
        run on its own tokens only, and the tokens per expert."""
        experts = chosen.flatten()
        order = experts.argsort(stable=True)
        counts = experts.bincount(minlength=self.num_experts)
        pairs = tokens.unsqueeze(1).expand(-1, self.top_k, -1).flatten(0, 1)
        routed = torch.empty_like(pairs).index_copy(0, order.argsort(), pairs)
        parts = routed.split(counts.tolist())
        y = torch.cat([f(part) for f, part in zip(self.experts, parts, strict=True)])
        y = torch.empty_like(y).index_copy(0, order, y).view(*chosen.shape, -1)
        return y, counts

    def dense(
        self, tokens: torch.Tensor, chosen: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What sparse returns, with every expert run on every token: no size depends on
        the routing, so an export or a trace holds for any input."""
        every = torch.stack([f(tokens) for f in self.experts], dim=1)
        index = chosen.unsqueeze(-1).expand(-1, -1, every.size(-1))
        experts = torch.arange(self.num_experts, device=chosen.device)
        counts = (chosen.unsqueeze(-1) == experts).sum(dim=(0, 1))
        return every.gather(1, index), counts

    def balance_loss(
        self, logits: torch.Tensor, counts: torch.Tensor, dtype: torch.dtype
    ) -> torch.Tensor:
        """num_experts x sum(share of routed tokens x mean router probability)."""
        probability = logits.softmax(dim=-1, dtype=dtype).mean(dim=0)
        share = counts.to(dtype) / logits.size(0)
        return self.num_experts * (share * probability).sum()

    def extra_repr(self) -> str:
        return f"{self.embed_dim}, num_experts={self.num_experts}, top_k={self.top_k}"
