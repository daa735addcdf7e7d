"""Key maps for Hugging Face's BERT and Mamba: hand-written modules with Hugging Face's names and
computation (no transformers, no download) load into graphs/bert_base.json and mamba_130m.json
at a small size and give the same outputs."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlstudio import compile_graph, load_graph
from dlstudio.core.graph import Graph
from dlstudio.core.helpers.ssm import MambaBlock
from dlstudio.train.keymaps import HF_BERT
from dlstudio.train.pretrained import load_pretrained
from tests.conftest import GRAPHS
from tests.train.helpers import block_examples
from tests.train.test_keymaps import saved

SMALL_BERT = {"vocab": 60, "hidden": 32, "layers": 2, "heads": 4, "intermediate": 64, "positions": 16}


# --- BERT, as transformers' modeling_bert computes it (eager attention, no padding mask) ---------

class BertEmbeddings(nn.Module):
    def __init__(self, vocab: int, hidden: int, positions: int, types: int = 2) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(types, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(positions).unsqueeze(0))

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        x = self.word_embeddings(ids) + self.token_type_embeddings(types)
        x = x + self.position_embeddings(self.position_ids[:, : ids.shape[1]])
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads, self.size = heads, hidden // heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))

    def split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:-1], self.heads, self.size).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.size)
        context = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).contiguous()
        return context.view(*context.shape[:-2], self.heads * self.size)


class BertResidualOutput(nn.Module):
    """BertSelfOutput and BertOutput: dense, dropout, LayerNorm(hidden + input)."""

    def __init__(self, inner: int, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(inner, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int) -> None:
        super().__init__()
        self.attention = nn.Module()
        self.attention.self = BertSelfAttention(hidden, heads)
        self.attention.output = BertResidualOutput(hidden, hidden)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(hidden, intermediate)
        self.output = BertResidualOutput(intermediate, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended = self.attention.output(self.attention.self(x), x)
        return self.output(F.gelu(self.intermediate.dense(attended)), attended)


class BertModel(nn.Module):
    def __init__(self, vocab: int, hidden: int, layers: int, heads: int, intermediate: int, positions: int) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, hidden, positions)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(BertLayer(hidden, heads, intermediate) for _ in range(layers))
        self.pooler = nn.Module()
        self.pooler.dense = nn.Linear(hidden, hidden)

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embeddings(ids, types)
        for layer in self.encoder.layer:
            x = layer(x)
        return x, torch.tanh(self.pooler.dense(x[:, 0]))


def perturbed(module: nn.Module) -> nn.Module:
    """Every weight moved off its initial value (layer norms away from 1 and 0)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return module.eval()


def small_bert() -> Graph:
    """graphs/bert_base.json's layout at SMALL_BERT's size, from the generator that wrote it."""
    return load_graph(block_examples().bert_doc(**SMALL_BERT))


@pytest.fixture(scope="module")
def hf_bert() -> BertModel:
    return perturbed(BertModel(**SMALL_BERT))


def test_bert_base_has_bert_base_uncased_size():
    """30522 x 768 words, 512 positions, 2 types and a LayerNorm (23,837,184); 12 layers of four
    768 x 768 projections, two LayerNorms and a 3072 feed-forward (7,087,872 each); the pooler
    (590,592): 109,482,240, the count BertModel reports for bert-base-uncased."""
    embeddings = 30522 * 768 + 512 * 768 + 2 * 768 + 2 * 768
    layer = 4 * (768 * 768 + 768) + 2 * 2 * 768 + (768 * 3072 + 3072) + (3072 * 768 + 768)
    assert embeddings + 12 * layer + 768 * 768 + 768 == 109_482_240
    reference = BertModel(30522, 768, 12, 12, 3072, 512).to("meta")
    module = compile_graph(load_graph(GRAPHS / "bert_base.json"))
    assert sum(p.numel() for p in module.parameters()) == sum(p.numel() for p in reference.parameters())
    renamed = HF_BERT.apply({f"bert.{k}": v for k, v in reference.state_dict().items()})
    assert {k: tuple(v.shape) for k, v in renamed.items()} == {
        k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_hugging_face_bert_with_prefix_heads_and_old_norm_names_loads_and_agrees(hf_bert, tmp_path):
    state = {f"bert.{k}": v for k, v in hf_bert.state_dict().items()}
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in state.items()}  # as bert-base-uncased's file names them
    state["cls.predictions.bias"] = torch.zeros(SMALL_BERT["vocab"])  # BertForPreTraining's head
    assert "bert.embeddings.position_ids" in state
    module = compile_graph(small_bert()).eval()
    report = load_pretrained(module, saved(state, tmp_path / "bert.safetensors"), mapping="hf-bert")
    assert not report.missing and not report.unused and len(report.loaded) == 7 + 2 * 16
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, SMALL_BERT["vocab"], (3, 11), generator=generator)
    types = torch.randint(0, 2, (3, 11), generator=generator)
    with torch.no_grad():
        hidden, pooled = module(ids, types)
        expected_hidden, expected_pooled = hf_bert(ids, types)
    assert torch.allclose(hidden, expected_hidden, atol=1e-5)
    assert torch.allclose(pooled, expected_pooled, atol=1e-5)


def test_bert_without_prefix_is_detected(hf_bert, tmp_path):
    state = {k: v for k, v in hf_bert.state_dict().items() if k != "embeddings.position_ids"}
    report = load_pretrained(compile_graph(small_bert()), saved(state, tmp_path / "b.safetensors"))
    assert report.key_map == "hf-bert" and not report.missing


# --- Mamba, as transformers' MambaMixer.slow_forward computes it ---------------------------------

class MambaMixer(nn.Module):
    """Hugging Face's MambaMixer (use_bias False, use_conv_bias True, silu), slow path, no cache."""

    def __init__(self, hidden: int, state: int = 16, conv: int = 4, expand: int = 2) -> None:
        super().__init__()
        inner, self.rank, self.state = expand * hidden, math.ceil(hidden / 16), state
        self.conv1d = nn.Conv1d(inner, inner, conv, groups=inner, padding=conv - 1)
        self.in_proj = nn.Linear(hidden, 2 * inner, bias=False)
        self.x_proj = nn.Linear(inner, self.rank + 2 * state, bias=False)
        self.dt_proj = nn.Linear(self.rank, inner)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, state + 1, dtype=torch.float32)).expand(inner, -1).clone())
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, hidden, bias=False)

    def forward(self, input_states: torch.Tensor) -> torch.Tensor:
        batch, seq_len, _ = input_states.shape
        hidden_states, gate = self.in_proj(input_states).transpose(1, 2).chunk(2, dim=1)
        hidden_states = F.silu(self.conv1d(hidden_states)[..., :seq_len])
        time_step, B, C = torch.split(self.x_proj(hidden_states.transpose(1, 2)),
                                      [self.rank, self.state, self.state], dim=-1)
        discrete_time_step = F.softplus(self.dt_proj(time_step)).transpose(1, 2)
        A = -torch.exp(self.A_log.float())
        discrete_A = torch.exp(A[None, :, None, :] * discrete_time_step[:, :, :, None])
        deltaB_u = discrete_time_step[:, :, :, None] * B[:, None, :, :].float() * hidden_states[:, :, :, None]
        ssm_state = torch.zeros(batch, hidden_states.shape[1], self.state)
        scan_outputs = []
        for i in range(seq_len):
            ssm_state = discrete_A[:, :, i, :] * ssm_state + deltaB_u[:, :, i, :]
            scan_outputs.append(torch.matmul(ssm_state, C[:, i, :].unsqueeze(-1))[:, :, 0])
        scan_output = torch.stack(scan_outputs, dim=-1) + hidden_states * self.D[None, :, None]
        return self.out_proj((scan_output * F.silu(gate)).transpose(1, 2))


class MambaRMSNorm(nn.Module):
    def __init__(self, hidden: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(hidden)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class MambaLayer(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm, self.mixer = MambaRMSNorm(hidden), MambaMixer(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))


class MambaForCausalLM(nn.Module):
    def __init__(self, vocab: int = 40, hidden: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.embeddings = nn.Embedding(vocab, hidden)
        self.backbone.layers = nn.ModuleList(MambaLayer(hidden) for _ in range(layers))
        self.backbone.norm_f = MambaRMSNorm(hidden)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.backbone.embeddings(ids)
        for layer in self.backbone.layers:
            x = layer(x)
        return self.backbone.norm_f(x) @ self.backbone.embeddings.weight.T  # lm_head tied


def test_the_catalogue_mamba_block_computes_hugging_faces_mixer():
    reference = perturbed(MambaMixer(24, state=8))
    block = MambaBlock(24, d_state=8).eval()
    block.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 13, 24, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = reference(x)
        assert torch.allclose(block(x), expected, atol=1e-5)
        block.sequential_scan = block.chunked_scan  # the scan a GPU runs, here on the CPU
        block.chunk = 4
        assert torch.allclose(block(x), expected, atol=1e-5)


def mamba_doc(vocab: int = 40, hidden: int = 32, layers: int = 2) -> dict:
    """graphs/mamba_130m.json at a small size."""
    doc = json.loads((GRAPHS / "mamba_130m.json").read_text())
    nodes = {node["id"]: node for node in doc["nodes"]}
    nodes["embedding"]["params"] = {"num_embeddings": vocab, "embedding_dim": hidden}
    nodes["layers"]["params"]["repeat"] = layers
    nodes["lm_head"]["params"]["out_features"] = vocab
    return doc


@pytest.mark.parametrize("layout", ["hf", "state-spaces"])
def test_mamba_checkpoints_load_with_tied_head_and_agree(layout, tmp_path):
    hf = perturbed(MambaForCausalLM())
    state = dict(hf.state_dict())
    if layout == "state-spaces":  # mamba_ssm's names, with the tied head stored too
        state = {k.replace("backbone.embeddings.", "backbone.embedding."): v for k, v in state.items()}
        state["lm_head.weight"] = state["backbone.embedding.weight"].clone()
    module = compile_graph(load_graph(mamba_doc())).eval()
    report = load_pretrained(module, saved(state, tmp_path / "mamba.safetensors"), mapping="hf-mamba")
    assert not report.missing and not report.unused
    assert module.lm_head.weight is module.embedding.weight
    ids = torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.allclose(module(ids), hf(ids), atol=1e-5)


def test_mamba_is_detected_without_naming_the_map(tmp_path):
    state = perturbed(MambaForCausalLM()).state_dict()
    report = load_pretrained(compile_graph(load_graph(mamba_doc())), saved(state, tmp_path / "m.safetensors"))
    assert report.key_map == "hf-mamba" and not report.missing
