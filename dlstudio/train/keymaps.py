"""Key maps: rename a published checkpoint's state_dict keys to a graph's ``<node id>.<parameter>``.

A graph's keys follow its blocks (``layer2.rest.0.conv1.weight``), so a published model
built the same way maps over with a few renames. A :class:`KeyMap` renames keys by regular
expressions applied in order (after a ``restructure`` that may read all the keys), drops keys
a graph has no place for (GPT-2's causal-mask buffers), transposes the tensors of layers stored
the other way round (Hugging Face's ``Conv1D``) and fills tied weights (GPT-2's ``lm_head`` is
``wte``). Built-in maps cover torchvision's ResNet, VGG and MobileNetV2 and Hugging Face's
GPT-2, BERT and Mamba; a rename file (JSON) states the same as data::

    {"rename": {"^backbone\\\\.": "", "\\\\.(\\\\d+)\\\\.": "_\\\\1_"},
     "ignore": ["\\\\.attn\\\\.bias$"], "transpose": ["\\\\.c_fc\\\\.weight$"],
     "tie": {"head.weight": "embed.weight"}}

or just the ``rename`` object. Loading through a key map is strict: every graph weight must
be covered and every mapped key must have a node, or the error names the keys that differ.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dlstudio.train.errors import ConfigError

#: Most bytes a rename file may take.
MAX_MAP_BYTES = 2**20


@dataclass(frozen=True)
class KeyMap:
    """Renames (pattern, replacement) applied in order; keys ``ignore`` matches (before
    renaming) are dropped; tensors whose source key ``transpose`` matches are transposed;
    ``tie`` fills a graph key the file lacks from another graph key."""

    name: str
    rename: tuple[tuple[re.Pattern[str], str], ...] = ()
    ignore: tuple[re.Pattern[str], ...] = ()
    transpose: tuple[re.Pattern[str], ...] = ()
    tie: tuple[tuple[str, str], ...] = ()
    #: Renames that depend on which keys the file holds, applied before ``rename``.
    restructure: Callable[[list[str]], dict[str, str]] | None = None

    def key(self, source: str) -> str:
        """The graph key of the file's ``source`` key."""
        for pattern, replacement in self.rename:
            source = pattern.sub(replacement, source)
        return source

    def apply(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The file's tensors under graph keys (transposed and tied where the map says)."""
        mapped: dict[str, torch.Tensor] = {}
        moved = self.restructure(list(tensors)) if self.restructure else {}
        for source, tensor in tensors.items():
            if any(p.search(source) for p in self.ignore):
                continue
            if any(p.search(source) for p in self.transpose):
                tensor = tensor.t().contiguous()
            target = self.key(moved.get(source, source))
            if target in mapped:
                raise ConfigError(f"key map {self.name}: '{source}' and another key both become '{target}'",
                                  "make the rename patterns tell them apart")
            mapped[target] = tensor
        for target, origin in self.tie:
            if target not in mapped and origin in mapped:
                mapped[target] = mapped[origin]
        return mapped


def _compiled(name: str, rename: list[tuple[str, str]], ignore: list[str] = (),  # type: ignore[assignment]
              transpose: list[str] = (), tie: dict[str, str] | None = None) -> KeyMap:  # type: ignore[assignment]
    return KeyMap(name, tuple((re.compile(p), r) for p, r in rename), tuple(re.compile(p) for p in ignore),
                  tuple(re.compile(p) for p in transpose), tuple((tie or {}).items()))


#: Every dot but the last (before the parameter's name) becomes an underscore.
_FLATTEN = (r"\.(?=[^.]*\.)", "_")

def _resnet_stages(keys: list[str]) -> dict[str, str]:
    """torchvision's ResNet keys in the block layout of graphs/resnet18.json and resnet50.json:
    a stage whose first block has a ``downsample`` is a ``Stage`` block (``layer2.0.`` ->
    ``layer2.down.``, ``layer2.0.downsample.0.`` -> ``layer2.down.down_conv.``, ``layer2.2.`` ->
    ``layer2.rest.1.``); one without is a repeated block (``layer1.1.`` stays)."""
    staged = {match.group(1) for key in keys if (match := re.match(r"(layer\d+)\.0\.downsample\.", key))}
    moved = {}
    for key in keys:
        match = re.match(r"(layer\d+)\.(\d+)\.(.*)$", key)
        if not match or match.group(1) not in staged:
            continue
        stage, index, rest = match.group(1), int(match.group(2)), match.group(3)
        rest = re.sub(r"^downsample\.0\.", "down_conv.", re.sub(r"^downsample\.1\.", "down_bn.", rest))
        moved[key] = f"{stage}.down.{rest}" if index == 0 else f"{stage}.rest.{index - 1}.{rest}"
    return moved


#: torchvision's ResNet family into the block layout of graphs/resnet18.json and resnet50.json.
TORCHVISION_RESNET = KeyMap("torchvision-resnet", restructure=_resnet_stages)

#: ``features.0.weight`` -> ``features_0.weight``: node ids are the module path with underscores.
TORCHVISION_VGG = _compiled("torchvision-vgg", [_FLATTEN])


def _stage(name: str, blocks: int) -> tuple[str, ...]:
    return (f"{name}.down", *(f"{name}.rest.{i}" for i in range(blocks - 1)))


#: Where torchvision's MobileNetV2 ``features.<i>`` lies in graphs/mobilenet_v2.json (any width).
_MOBILENET_V2_FEATURES = ("stem", "block1", *_stage("stage2", 2), *_stage("stage3", 3), *_stage("stage4", 4),
                          *_stage("stage5", 3), *_stage("stage6", 3), "block7", "head")
#: The layers of an InvertedResidual's ``conv`` Sequential, without and with the expansion.
_SEPARABLE = ("depthwise", "project", "project_bn")
_EXPANDED = ("expand", *_SEPARABLE)
#: A Conv2dNormActivation's convolution and batch norm.
_CONV_BN = {"0": "conv", "1": "bn"}


def _mobilenet_v2_features(keys: list[str]) -> dict[str, str]:
    """torchvision's ``features.<i>`` keys in graphs/mobilenet_v2.json's blocks:
    ``features.0.1.weight`` -> ``stem.bn.weight``, ``features.3.conv.1.0.weight`` ->
    ``stage2.rest.0.depthwise.conv.weight``, ``features.1.conv.1.weight`` -> ``block1.project.weight``."""
    moved = {}
    for key in keys:
        match = re.match(r"features\.(\d+)\.(?:conv\.(\d+)\.)?(?:([01])\.)?([^.]+)$", key)
        if not match or int(match.group(1)) >= len(_MOBILENET_V2_FEATURES):
            continue
        index, layer, conv_bn, parameter = int(match.group(1)), match.group(2), match.group(3), match.group(4)
        path = [_MOBILENET_V2_FEATURES[index]]
        if layer is not None:
            layers = _SEPARABLE if index == 1 else _EXPANDED
            if int(layer) >= len(layers):
                continue
            path.append(layers[int(layer)])
        if conv_bn is not None:
            path.append(_CONV_BN[conv_bn])
        moved[key] = ".".join([*path, parameter])
    return moved


#: torchvision's MobileNetV2 into graphs/mobilenet_v2.json: the stem, the expansion-1 block,
#: stages (a ``down`` block, then repeated residual ones), the head convolution and classifier.
TORCHVISION_MOBILENET = KeyMap("torchvision-mobilenet", ((re.compile(r"^classifier\.1\."), "classifier."),),
                               restructure=_mobilenet_v2_features)

#: Hugging Face's GPT-2 into graphs/gpt2_small.json's layout: ``h.<i>`` repeats a Block of
#: ln_1, attn (MultiheadAttention: c_attn is its in_proj), ln_2, fc and proj; lm_head is tied
#: to wte. ``Conv1D`` stores its weight as [in, out]: transposed into torch's [out, in].
HF_GPT2 = _compiled("hf-gpt2", [
    (r"^transformer\.", ""),
    (r"\.attn\.c_attn\.weight$", ".attn.in_proj_weight"),
    (r"\.attn\.c_attn\.bias$", ".attn.in_proj_bias"),
    (r"\.attn\.c_proj\.", ".attn.out_proj."),
    (r"\.mlp\.c_fc\.", ".fc."), (r"\.mlp\.c_proj\.", ".proj.")],
    ignore=[r"\.attn\.(masked_)?bias$"],
    transpose=[r"\.(c_attn|c_proj|c_fc)\.weight$"],
    tie={"lm_head.weight": "wte.weight"})

#: Hugging Face's BertModel (``bert.`` prefix or none) into graphs/bert_base.json: the layer's
#: query, key and value keep their names, ``attention.output`` and ``output`` become
#: ``attention_out``/``attention_norm`` and ``output``/``output_norm``. Old checkpoints'
#: LayerNorm ``gamma``/``beta`` are its weight and bias; the position and token type id buffers
#: and BertForPreTraining's ``cls.`` heads have no node and are dropped.
_LAYER = r"^encoder\.layer\.(\d+)\."
HF_BERT = _compiled("hf-bert", [
    (r"^bert\.", ""), (r"\.LayerNorm\.gamma$", ".LayerNorm.weight"), (r"\.LayerNorm\.beta$", ".LayerNorm.bias"),
    (r"^embeddings\.LayerNorm\.", "embeddings_norm."), (r"^embeddings\.", ""),
    (_LAYER + r"attention\.self\.", r"encoder.\1."),
    (_LAYER + r"attention\.output\.dense\.", r"encoder.\1.attention_out."),
    (_LAYER + r"attention\.output\.LayerNorm\.", r"encoder.\1.attention_norm."),
    (_LAYER + r"intermediate\.dense\.", r"encoder.\1.intermediate."),
    (_LAYER + r"output\.dense\.", r"encoder.\1.output."),
    (_LAYER + r"output\.LayerNorm\.", r"encoder.\1.output_norm."),
    (r"^pooler\.dense\.", "pooler.")],
    ignore=[r"embeddings\.(position|token_type)_ids$", r"^cls\."])

#: Hugging Face's MambaForCausalLM (``backbone.embeddings``) and state-spaces' Mamba
#: (``backbone.embedding``) into graphs/mamba_130m.json: layers keep their names
#: (``layers.<i>.norm``, ``layers.<i>.mixer.in_proj``, ``A_log``, ``D``, ...); the head is tied.
HF_MAMBA = _compiled("hf-mamba", [(r"^backbone\.", ""), (r"^embeddings?\.", "embedding.")],
                     tie={"lm_head.weight": "embedding.weight"})

BUILTIN_MAPS: dict[str, KeyMap] = {m.name: m for m in (TORCHVISION_RESNET, TORCHVISION_VGG,
                                                         TORCHVISION_MOBILENET, HF_GPT2, HF_BERT, HF_MAMBA)}


def key_map(name_or_path: str, base_dir: Path | None = None) -> KeyMap:
    """A built-in map by name, or a rename file (relative to ``base_dir``)."""
    if name_or_path in BUILTIN_MAPS:
        return BUILTIN_MAPS[name_or_path]
    path = Path(name_or_path).expanduser()
    path = path if path.is_absolute() or base_dir is None else base_dir / path
    if not path.is_file():
        raise ConfigError(f"key map '{name_or_path}': neither a built-in map nor a file",
                          f"use one of {', '.join(BUILTIN_MAPS)}, or a JSON rename file")
    if path.stat().st_size > MAX_MAP_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_MAP_BYTES // 1024} KB, too large for a key map")
    try:
        return rename_file_map(path.name, json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, re.error) as error:
        raise ConfigError(f"{path}: not a valid key map ({' '.join(str(error).split())[:160]})",
                          'write {"rename": {"source pattern": "graph key"}} as JSON') from None


def rename_file_map(name: str, doc: Any) -> KeyMap:
    """The map a rename file's JSON states (see the module docstring)."""
    if not isinstance(doc, dict):
        raise ValueError("the file must hold a JSON object")
    sections = {"rename", "ignore", "transpose", "tie"}
    if not set(doc) <= sections:
        doc = {"rename": doc}
    rename, tie = doc.get("rename", {}), doc.get("tie", {})
    ignore, transpose = doc.get("ignore", []), doc.get("transpose", [])
    if not (isinstance(rename, dict) and isinstance(tie, dict) and isinstance(ignore, list)
            and isinstance(transpose, list)):
        raise ValueError("rename and tie are objects, ignore and transpose lists")
    texts = [*rename, *rename.values(), *ignore, *transpose, *tie, *tie.values()]
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("every pattern and key is a string")
    return _compiled(name, list(rename.items()), ignore, transpose, tie)


def detect_map(tensors: dict[str, torch.Tensor], graph_keys: set[str]) -> KeyMap | None:
    """The built-in map under which the file's keys are exactly the graph's, if one is."""
    for candidate in BUILTIN_MAPS.values():
        try:
            if set(candidate.apply(tensors)) == graph_keys:
                return candidate
        except ConfigError:
            continue
    return None


def check_coverage(mapped: dict[str, torch.Tensor], graph_keys: list[str], source: str) -> None:
    """Strict loading: the mapped keys are exactly the graph's; else one line naming the difference."""
    missing = [k for k in graph_keys if k not in mapped]
    unknown = [k for k in mapped if k not in set(graph_keys)]
    if not missing and not unknown:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} graph weight{'s' if len(missing) > 1 else ''} missing ({_first(missing)})")
    if unknown:
        parts.append(f"{len(unknown)} key{'s' if len(unknown) > 1 else ''} match no node ({_first(unknown)})")
    raise ConfigError(f"{source}: {'; '.join(parts)}",
                      "name the nodes as the map expects, or give a rename file with --key-map")


def _first(keys: list[str], shown: int = 4) -> str:
    more = f", ... {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
