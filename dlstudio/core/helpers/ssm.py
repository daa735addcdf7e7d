"""State space family helpers: MambaBlock, the selective state-space (S6) block of Mamba.

torch, nn, F and math come through :mod:`dlstudio.core.modules`, the one module that imports
torch for the helpers, so the names match those of an exported file.
"""

from __future__ import annotations

from dlstudio.core.modules import F, math, nn, support, torch


@support
class MambaBlock(nn.Module):
    """Mamba's gated, input-selective state space on [batch, time, d_model].

    Gu & Dao (2023). Parameters are named as in ``mamba_ssm``'s ``Mamba``, so its
    state_dict loads. For each of the d_inner = expand * d_model channels and each of
    its d_state states, h_t = exp(dt_t A) h_(t-1) + dt_t B_t x_t, y_t = C_t h_t + D x_t,
    with dt, B and C computed from x_t. The scan runs in float32 even under autocast:
    on a CPU one step at a time (its tensors stay in cache), elsewhere in chunks of 64
    steps that a doubling scan combines in parallel; under torch.export as torch's scan
    operator, which ONNX runs as a Scan over any length. Every decay it multiplies is
    exp(a sum of dt A) <= 1, so long sequences stay finite.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        bias: bool = False,
        conv_bias: bool = True,
    ) -> None:
        super().__init__()
        d_inner = expand * d_model
        self.d_conv = d_conv
        self.chunk = 64
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=bias)
        self.conv1d = nn.Conv1d(
            d_inner, d_inner, d_conv, groups=d_inner, bias=conv_bias
        )
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner)
        states = torch.arange(1, d_state + 1, dtype=torch.float32)
        self.A_log = nn.Parameter(torch.log(states).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=bias)
        self.reset_dt()

    def reset_dt(self) -> None:
        """Mamba's step-size start: softplus(dt bias) log-uniform in [0.001, 0.1]."""
        bound = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -bound, bound)
        dt = torch.rand(self.dt_proj.out_features) * math.log(100) + math.log(0.001)
        dt = dt.exp().clamp(min=1e-4)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, gate = self.in_proj(x).chunk(2, dim=-1)
        u = F.pad(u.transpose(1, 2), (self.d_conv - 1, 0))
        u = F.silu(self.conv1d(u).transpose(1, 2))
        with torch.autocast(x.device.type, enabled=False):
            y = self.ssm(u.to(torch.promote_types(u.dtype, torch.float32)))
        return self.out_proj(y.to(gate.dtype) * F.silu(gate))

    def ssm(self, u: torch.Tensor) -> torch.Tensor:
        """The selective state space on [batch, time, d_inner]."""
        d_state = self.A_log.size(1)
        x_dbl = F.linear(u, self.x_proj.weight.to(u.dtype))
        dt, B, C = x_dbl.split([self.dt_rank, d_state, d_state], dim=-1)
        dt = F.softplus(
            F.linear(dt, self.dt_proj.weight.to(u.dtype), self.dt_proj.bias.to(u.dtype))
        )
        A = -torch.exp(self.A_log.to(u.dtype))
        if torch.compiler.is_exporting():
            y = self.exported_scan(dt, u, A, B, C)
        else:
            log_decay = dt.unsqueeze(-1) * A
            inputs = (dt * u).unsqueeze(-1) * B.unsqueeze(2)
            cpu = u.device.type == "cpu"
            scan = self.sequential_scan if cpu else self.chunked_scan
            y = scan(log_decay, inputs, C)
        return y + u * self.D.to(u.dtype)

    def sequential_scan(
        self, log_decay: torch.Tensor, inputs: torch.Tensor, C: torch.Tensor
    ) -> torch.Tensor:
        """y_t = C_t h_t, one step after another: [batch, time, d_inner, d_state]."""
        h = inputs.new_zeros(inputs.size(0), inputs.size(2), inputs.size(3))
        ys = []
        steps = zip(
            log_decay.exp().unbind(1), inputs.unbind(1), C.unbind(1), strict=True
        )
        for decay, step, c in steps:
            h = decay * h + step
            ys.append(torch.bmm(h, c.unsqueeze(-1)).squeeze(-1))
        return torch.stack(ys, dim=1)

    @staticmethod
    def exported_scan(
        dt: torch.Tensor,
        u: torch.Tensor,
        A: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
    ) -> torch.Tensor:
        """sequential_scan's steps as torch's scan operator, which torch.onnx writes as
        an ONNX Scan over any length; each step forms its own decay and input."""

        def step(
            h: torch.Tensor, xs: list[torch.Tensor]
        ) -> tuple[torch.Tensor, torch.Tensor]:
            dt_t, u_t, b_t, c_t = xs
            decay = torch.exp(dt_t.unsqueeze(-1) * A)
            h = decay * h + (dt_t * u_t).unsqueeze(-1) * b_t.unsqueeze(1)
            return h, torch.bmm(h, c_t.unsqueeze(-1)).squeeze(-1)

        h = u.new_zeros(u.size(0), u.size(2), A.size(1))
        steps = [t.transpose(0, 1) for t in (dt, u, B, C)]
        return torch._higher_order_ops.scan(step, h, steps)[1].transpose(0, 1)

    def chunked_scan(
        self, log_decay: torch.Tensor, inputs: torch.Tensor, C: torch.Tensor
    ) -> torch.Tensor:
        """y_t = C_t h_t: all chunks scanned at once, then their starts carried in."""
        batch, length, channels, d_state = inputs.shape
        chunks = -(-length // self.chunk)
        shape = (batch, chunks, self.chunk, channels, d_state)
        pad = (0, 0, 0, 0, 0, chunks * self.chunk - length)
        log_decay = F.pad(log_decay, pad).reshape(batch * chunks, *shape[2:])
        inputs = F.pad(inputs, pad).reshape(batch * chunks, *shape[2:])
        total, local = self.doubling_scan(log_decay, inputs)
        total, local = total.reshape(shape), local.reshape(shape)
        h = inputs.new_zeros(batch, channels, d_state)
        starts = []
        for index in range(chunks):
            starts.append(h)
            h = local[:, index, -1] + total[:, index, -1].exp() * h
        states = local + total.exp() * torch.stack(starts, dim=1).unsqueeze(2)
        states = states.reshape(batch, chunks * self.chunk, channels, d_state)
        return torch.einsum("bldn,bln->bld", states[:, :length], C)

    @staticmethod
    def doubling_scan(
        log_decay: torch.Tensor, inputs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """States h_t = exp(log_decay_t) h_(t-1) + inputs_t from h_0 = 0 along dim 1, in
        log2(length) passes, with the running sums of log_decay (each factor's log)."""
        states = inputs
        offset = 1
        while offset < states.size(1):
            shift = (0, 0, 0, 0, offset, 0)
            states = states + log_decay.exp() * F.pad(states[:, :-offset], shift)
            log_decay = log_decay + F.pad(log_decay[:, :-offset], shift)
            offset *= 2
        return log_decay, states
