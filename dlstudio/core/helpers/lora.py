"""Adapters family helpers: LoRALinear, a frozen Linear plus a trainable low-rank update.

torch, nn, F and math come through :mod:`dlstudio.core.modules`, the one module that imports
torch for the helpers, so the names match those of an exported file.
"""

from __future__ import annotations

from dlstudio.core.modules import F, math, nn, support, torch


@support
class LoRALinear(nn.Module):
    """y = x W^T + b + (lora_alpha / r) * dropout(x) A^T B^T (LoRA, Hu et al. 2021).

    W and b are persistent buffers named like nn.Linear's: a Linear's state_dict loads
    into them, while only A [r, in] and B [out, r] are parameters (and trained). B
    starts at zero, so the layer starts as the plain Linear x W^T + b.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        r: int = 8,
        lora_alpha: float = 16.0,
        lora_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.r = r
        self.scaling = lora_alpha / r
        self.register_buffer("weight", torch.empty(out_features, in_features))
        self.register_buffer("bias", torch.empty(out_features) if bias else None)
        self.lora_A = nn.Parameter(torch.empty(r, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, r))
        self.dropout = nn.Dropout(lora_dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """W and b as nn.Linear draws them, A as in the LoRA paper, B zero."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)
        return F.linear(x, self.weight, self.bias) + update * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into W (W += scaling * B A) and restart B at zero.

        The function stays the same (up to rounding), and so does a state_dict saved
        after, since no flag records the merge; W and b then load into an nn.Linear.
        """
        self.weight += (self.lora_B @ self.lora_A) * self.scaling
        self.lora_B.zero_()

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, r={self.r}, scaling={self.scaling}"
        )
