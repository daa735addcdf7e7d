"""What a generative task draws after each epoch reaches the listeners as EpochSample events, the
same bytes the run folder keeps: a GAN's fixed-noise grid, a language model's text."""

from __future__ import annotations

import io
import json

from PIL import Image

from dlstudio.train import EpochEnd, EpochSample, RunDir
from dlstudio.train.events import epoch_samples, event_to_json
from dlstudio.train.rundir import RunDir as Folder
from dlstudio.train.sampling import draw_to_view, sample_refusal, sample_run
from dlstudio.train.tasks.language_model import EPOCH_LENGTH
from tests.train.test_gan import fit as fit_gan
from tests.train.test_gan import tiny_gan
from tests.train.test_language_model import fit as fit_lm
from tests.train.test_language_model import text_file, tiny_lm  # noqa: F401  (text_file: a fixture)


def test_a_gan_sends_the_grid_it_keeps_after_each_epoch_after_the_epoch_ends(tmp_path) -> None:
    _, outcome, recorder = fit_gan(tiny_gan(epochs=2), run_dir=RunDir(tmp_path / "run"))
    assert outcome.reason == "completed"
    samples = recorder.of_type(EpochSample)
    assert [(s.epoch, s.name, s.title, s.text) for s in samples] == [
        (1, "samples/epoch-001.png", "samples", ""), (2, "samples/epoch-002.png", "samples", "")]
    for sample in samples:
        assert sample.png == (tmp_path / "run" / sample.name).read_bytes()
    assert Image.open(io.BytesIO(samples[0].png)).size == (4 * (4 * 9 + 1),) * 2  # 16 8x8 images, 4x
    order = [type(e).__name__ for e in recorder.events if isinstance(e, EpochEnd | EpochSample)]
    assert order == ["EpochEnd", "EpochSample", "EpochEnd", "EpochSample"]


def test_a_run_without_a_folder_sends_its_grid_all_the_same() -> None:
    _, _, recorder = fit_gan(tiny_gan(epochs=1))
    [sample] = recorder.of_type(EpochSample)
    assert sample.png.startswith(b"\x89PNG")


def test_a_language_model_sends_a_text_each_epoch_drawn_as_sample_draws_it(tmp_path, text_file) -> None:  # noqa: F811
    doc = tiny_lm(str(text_file), epochs=1, language_model={"sample_temperature": 0})
    _, _, recorder = fit_lm(doc, run_dir=RunDir(tmp_path / "run"))
    [sample] = recorder.of_type(EpochSample)
    assert sample.name == "samples/epoch-001.txt" and sample.png == b""
    assert sample.text.encode() == (tmp_path / "run" / sample.name).read_bytes()
    greedy = sample_run(Folder(tmp_path / "run"), 1, 0, length=EPOCH_LENGTH, temperature=0)
    assert [sample.text] == greedy and len(sample.text) == EPOCH_LENGTH
    drawn = draw_to_view(Folder(tmp_path / "run"), seed=5)  # the run's temperature 0: greedy, whatever the seed
    assert len(drawn.texts) == 3 and drawn.png == b"" and drawn.texts[0].startswith(greedy[0][:40])


def test_only_pictures_and_texts_are_sent_and_json_lines_carry_them() -> None:
    files = {"samples/epoch-002.png": b"\x89PNG..", "notes/epoch-002.txt": b"to be", "raw/epoch-002.npz": b"x"}
    picture, text = epoch_samples(2, 40, files)
    assert (picture.title, text.title, text.text) == ("samples", "notes", "to be")
    assert json.loads(event_to_json(picture))["png"] == "iVBORy4u"  # base64
    assert json.loads(event_to_json(text)) == {"event": "epoch_sample", "epoch": 2, "step": 40,
                                               "name": "notes/epoch-002.txt", "png": "", "text": "to be"}


def test_only_a_generative_tasks_runs_can_be_sampled() -> None:
    assert sample_refusal("gan") is None and sample_refusal("language_model") is None
    refusal = sample_refusal("supervised")
    assert refusal is not None and refusal.startswith("a supervised run has nothing to sample") and "gan" in refusal
