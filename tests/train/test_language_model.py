"""The language_model task on a tiny text: sliding windows, bits per character, a saved
vocabulary, seeded sampling, bit-exact resume, two processes, and ``dlstudio sample``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from dlstudio.cli import main
from dlstudio.core.io import save_graph
from dlstudio.train import EpochEnd, Recorder, RunDir, Trainer
from dlstudio.train.distributed import World
from dlstudio.train.errors import DataError
from dlstudio.train.sampling import sample_run
from dlstudio.train.tasks.language_model import TextSampler, WindowBatches, choose, text_windows
from dlstudio.train.tokenizers import ByteTokenizer, CharTokenizer
from tests.train.helpers import graph_of, mlp

TEXT = "the cat sat on the mat. the dog sat on the log. " * 40
VOCAB = len(set(TEXT))


def tiny_lm(path: str, length: int = 16, vocab: int = VOCAB, shape: Any = "T", **training: Any) -> dict[str, Any]:
    """Embedding -> one causal Transformer layer -> Linear over the vocabulary."""
    section: dict[str, Any] = {
        "task": "language_model",
        "dataset": {"name": "text", "params": {"path": path, "length": length}, "inputs": {"tokens": "x"}},
        "loss": {"type": "CrossEntropyLoss", "output": "logits", "target": "y"},
        "optimizer": {"type": "AdamW", "params": {"lr": 0.01}},
        "epochs": 2, "batch_size": 16, "validation_split": 0.1, "seed": 0,
    }
    section.update(training)
    ids = ["tokens", "embed", "block", "head", "logits"]
    return {
        "format": "dlstudio.graph", "version": 1, "name": "tiny lm", "training": section,
        "nodes": [
            {"id": "tokens", "type": "Input", "params": {"dtype": "int64", "shape": [shape]}},
            {"id": "embed", "type": "Embedding", "params": {"num_embeddings": vocab, "embedding_dim": 16}},
            {"id": "block", "type": "TransformerEncoderLayer",
             "params": {"causal": True, "nhead": 2, "dim_feedforward": 32, "dropout": 0.1}},
            {"id": "head", "type": "Linear", "params": {"out_features": vocab}},
            {"id": "logits", "type": "Output"},
        ],
        "edges": [{"source": a, "target": b} for a, b in zip(ids, ids[1:], strict=False)],
    }


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def fit(doc: dict[str, Any], **options: Any) -> tuple[Trainer, Any, Recorder]:
    recorder = Recorder()
    trainer = Trainer(graph_of(doc), callbacks=[recorder], **options)
    return trainer, trainer.fit(), recorder


# --- tokenizers and windows ------------------------------------------------------------------------

def test_the_char_tokenizer_numbers_the_texts_characters_and_refuses_others():
    tokenizer = CharTokenizer.of_text("banana!")
    assert tokenizer.symbols == "!abn" and tokenizer.encode("nab").tolist() == [3, 1, 2]
    assert tokenizer.decode([2, 1, 3, 0]) == "ban!"
    with pytest.raises(DataError, match="outside the vocabulary: 'xz'"):
        tokenizer.encode("zax")


def test_the_byte_tokenizer_takes_any_text():
    tokenizer = ByteTokenizer()
    ids = tokenizer.encode("née")
    assert ids.tolist() == [110, 195, 169, 101] and tokenizer.decode(ids.tolist()) == "née"


def test_every_training_position_starts_a_window_and_the_end_validates():
    tokenizer = CharTokenizer.of_text(TEXT)
    data = text_windows(TEXT, tokenizer, 16, 0.1)
    ids = torch.from_numpy(tokenizer.encode(TEXT))
    train_tokens = len(ids) - round(len(ids) * 0.1)
    assert data.train_size == train_tokens - 16
    for start in (0, 1, 7, data.train_size - 1):
        assert torch.equal(data.train["x"][start], ids[start:start + 16])
        assert torch.equal(data.train["y"][start], ids[start + 1:start + 17])
    assert data.val_size == (len(ids) - train_tokens - 1) // 16
    assert torch.equal(data.val["x"].reshape(-1), ids[train_tokens:train_tokens + data.val_size * 16])
    assert data.arrays.classes == {"y": VOCAB} and data.arrays.info["vocabulary"] == tokenizer.symbols


def test_a_text_too_short_for_its_windows_is_a_data_error():
    with pytest.raises(DataError, match="too few for windows of 64"):
        text_windows("short text", ByteTokenizer(), 64, 0.1)


def test_an_epoch_draws_one_windows_worth_of_starts_per_token_anew_each_epoch():
    batches = WindowBatches(starts=1000, per_epoch=70, local_batch=16, seed=3, world=World())
    first = torch.cat(batches.epoch(0, torch.device("cpu")))
    assert len(batches) == 5 and len(first) == 70 and len(set(first.tolist())) == 70
    assert torch.equal(first, torch.cat(batches.epoch(0, torch.device("cpu"))))
    assert not torch.equal(first, torch.cat(batches.epoch(1, torch.device("cpu"))))


def test_two_ranks_share_the_global_batches_of_one():
    one = WindowBatches(1000, 64, 16, 0, World()).epoch(2, torch.device("cpu"))
    ranks = [WindowBatches(1000, 64, 8, 0, World(rank, rank, 2)).epoch(2, torch.device("cpu")) for rank in (0, 1)]
    for step, batch in enumerate(one):
        assert sorted(batch.tolist()) == sorted(ranks[0][step].tolist() + ranks[1][step].tolist())


# --- training --------------------------------------------------------------------------------------

def test_a_run_reports_bits_per_character_and_saves_its_vocabulary(tmp_path, text_file):
    _, result, rec = fit(tiny_lm(str(text_file)), run_dir=RunDir(tmp_path / "run"))
    assert result.reason == "completed"
    metrics = rec.of_type(EpochEnd)[-1].metrics
    assert list(metrics)[:3] == ["train_loss", "val_loss", "val_bits_per_char"]
    assert metrics["val_bits_per_char"] == pytest.approx(metrics["val_loss"] / math.log(2))
    record = RunDir(tmp_path / "run").read_record()
    assert record["data"]["tokenizer"] == "char"
    assert record["data"]["vocabulary"] == "".join(sorted(set(TEXT)))
    assert record["config"]["language_model"] == {"tokenizer": "char"}
    windows = math.ceil((len(TEXT) - round(len(TEXT) * 0.1)) / 16)
    assert result.step == 2 * math.ceil(windows / 16)


def test_the_byte_tokenizer_learns_from_256_scores(text_file):
    doc = tiny_lm(str(text_file), vocab=256, language_model={"tokenizer": "byte"}, epochs=1)
    _, result, _ = fit(doc)
    assert result.reason == "completed" and result.metrics["val_bits_per_char"] > 0


def test_resume_is_bit_exact(tmp_path, text_file):
    doc = tiny_lm(str(text_file), epochs=3, deterministic=True)
    fit(doc, run_dir=RunDir(tmp_path / "whole"))
    fit(doc, run_dir=RunDir(tmp_path / "split"), max_steps=11)
    _, result, _ = fit(doc, run_dir=RunDir(tmp_path / "split"), resume=True)
    assert result.reason == "completed"
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    split = load_file(str(tmp_path / "split" / "model.safetensors"))
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    without_time = lambda r: [{k: v for k, v in m.items() if "seconds" not in k} for m in r.read_metrics()]
    assert without_time(RunDir(tmp_path / "split")) == without_time(RunDir(tmp_path / "whole"))


def test_two_processes_train_what_one_does(tmp_path, text_file, capsys):
    # SGD, since Adam scales the rounding noise in the key bias's gradient (zero in exact
    # arithmetic: softmax ignores it) up to whole steps of lr
    sgd = {"type": "SGD", "params": {"lr": 0.1}}
    graph = tmp_path / "lm.json"
    save_graph(graph_of(_without_dropout(tiny_lm(str(text_file), epochs=1, optimizer=sgd))), graph)
    assert main(["run", str(graph), "--out", str(tmp_path / "one"), "--json"]) == 0
    assert main(["run", str(graph), "--out", str(tmp_path / "two"), "--json", "--nproc", "2"]) == 0
    one, two = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("one", "two"))
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5)
    first, second = (json.loads((tmp_path / run / "metrics.jsonl").read_text().splitlines()[-1])
                     for run in ("one", "two"))
    assert first["step"] == second["step"]
    assert abs(first["val_bits_per_char"] - second["val_bits_per_char"]) < 1e-4


def _without_dropout(doc: dict[str, Any]) -> dict[str, Any]:
    doc["nodes"][2]["params"]["dropout"] = 0.0
    return doc


# --- sampling --------------------------------------------------------------------------------------

@pytest.fixture
def trained(tmp_path, text_file) -> RunDir:
    run_dir = RunDir(tmp_path / "run")
    fit(tiny_lm(str(text_file), epochs=3), run_dir=run_dir)
    return run_dir


def test_samples_continue_the_prompt_and_repeat_with_the_seed(trained):
    texts = sample_run(trained, 3, seed=5, prompt="the ", length=30)
    assert len(texts) == 3 and all(t.startswith("the ") and len(t) == 34 for t in texts)
    assert set("".join(texts)) <= set(TEXT)
    assert texts == sample_run(trained, 3, seed=5, prompt="the ", length=30)
    assert texts != sample_run(trained, 3, seed=6, prompt="the ", length=30)


def test_greedy_top_1_and_a_tiny_top_p_choose_alike(trained):
    greedy = sample_run(trained, 2, seed=0, prompt="the c", length=20, temperature=0)
    assert greedy[0] == greedy[1]
    assert sample_run(trained, 2, seed=1, prompt="the c", length=20, top_k=1) == greedy
    assert sample_run(trained, 2, seed=2, prompt="the c", length=20, top_p=1e-6) == greedy


def test_choose_keeps_only_the_top_k_and_the_top_p_tokens():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(400, 1)
    generator = torch.Generator().manual_seed(0)
    assert set(choose(scores, 1.0, 2, 1.0, generator).tolist()) == {0, 1}
    assert set(choose(scores, 1.0, None, 0.7, generator).tolist()) == {0, 1}
    assert set(choose(scores, 1.0, None, 1.0, generator).tolist()) == {0, 1, 2, 3}


def test_a_fixed_length_input_is_padded_after_the_prompt(tmp_path, text_file):
    run_dir = RunDir(tmp_path / "run")
    trainer, _, _ = fit(tiny_lm(str(text_file), shape=16, epochs=1), run_dir=run_dir)
    padded = TextSampler.of(trainer.parts.module, trainer.parts.analysis, trainer.parts.config,
                            CharTokenizer.of_text(TEXT))
    assert padded.width == 16
    window = torch.from_numpy(CharTokenizer.of_text(TEXT).encode("the cat"))[None]
    free = TextSampler(padded.module.eval(), padded.tokenizer, 16, None, None)
    torch.testing.assert_close(padded._next_scores(window), free._next_scores(window))


def test_the_sample_command_prints_or_writes_text(trained, capsys, tmp_path):
    assert main(["sample", str(trained.path), "--prompt", "the", "--length", "12", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("the") and len(printed) == 3 + 12 + 1
    out = tmp_path / "more.txt"
    assert main(["sample", str(trained.path), "--n", "2", "--length", "8", "-o", str(out)]) == 0
    assert out.read_text().count("--- sample ") == 2
    assert main(["sample", str(trained.path), "--prompt", "Q"]) == 2
    assert "outside the vocabulary" in capsys.readouterr().err
    assert main(["sample", str(trained.path), "--top-p", "0"]) == 2


def test_a_run_that_cannot_sample_says_so_in_one_line(tmp_path, capsys):
    fit(mlp(epochs=1), run_dir=RunDir(tmp_path / "run"))
    assert main(["sample", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a supervised run has nothing to sample" in err
