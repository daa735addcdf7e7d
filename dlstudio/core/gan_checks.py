"""Checks of the ``gan`` task's settings (``training.gan``) against the graph: two Output-rooted
parts, the generator reading only its noise Input and the discriminator only the real data,
a generator that draws what the data holds, a discriminator that gives one score per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dlstudio.core.findings import Analysis
from dlstudio.core.tensor import TensorType
from dlstudio.core.training import GanConfig, TrainingConfig
from dlstudio.core.wiring import live_nodes

SECTION = "training.gan"
EXAMPLE = '"gan": {"generator": "<Output id>", "discriminator": "<Output id>", "noise": "<Input id>", ' \
          '"real": "<Input id>"}'


@dataclass
class _Checker:
    """What the checks read, and ``report(node, message, fix, param, severity)``."""

    config: TrainingConfig
    analysis: Analysis
    report: Callable[..., None]

    @property
    def input_ids(self) -> list[str]:
        return [n.id for n in self.analysis.graph.nodes if n.type == "Input"]

    @property
    def output_ids(self) -> list[str]:
        return [n.id for n in self.analysis.graph.nodes if n.type == "Output"]


def check_gan(config: TrainingConfig, analysis: Analysis, report: Callable[..., None]) -> None:
    """Every problem of a GAN's settings, each told to ``report(node, message, fix, param,
    severity)``."""
    checker = _Checker(config, analysis, report)
    gan = config.gan
    if gan is None:
        checker.report(None, "a GAN needs training.gan to name its generator and discriminator",
                       f"add {EXAMPLE}", SECTION)
        return
    if checker.config.metrics:
        checker.report(None, "a GAN reports its generator and discriminator losses, not metrics",
                       "remove training.metrics", "training.metrics", "warning")
    if len(checker.output_ids) < 2:
        checker.report(None, "a GAN needs a discriminator, but the graph has only one Output",
                       "build a discriminator from the real-data Input to an Output of its own, "
                       "and name that Output in training.gan.discriminator", SECTION)
        return
    if gan.noise in config.dataset.inputs:
        checker.report(gan.noise, f"the noise Input '{gan.noise}' is bound to dataset field "
                       f"'{config.dataset.inputs[gan.noise]}', but the task feeds it noise",
                       f"remove \"{gan.noise}\" from training.dataset.inputs", "training.dataset.inputs")
    roles = _roles(checker, gan)
    if roles is not None:
        _reads(checker, *roles)
        _shapes(checker, *roles)


def gan_fed_inputs(config: TrainingConfig, input_ids: list[str]) -> set[str]:
    """Inputs that need no dataset field: a GAN's noise (every Input while the GAN's section,
    which says which is which, is missing)."""
    if config.task != "gan":
        return set()
    return {config.gan.noise} if config.gan is not None and config.gan.noise else set(input_ids)


def _roles(checker: _Checker, gan: GanConfig) -> tuple[str, str, str, str] | None:
    """The generator, discriminator, noise and real node ids, when each names a node of its kind."""
    wanted = {"generator": (gan.generator, checker.output_ids, "Output"),
              "discriminator": (gan.discriminator, checker.output_ids, "Output"),
              "noise": (gan.noise, checker.input_ids, "Input"),
              "real": (gan.real, checker.input_ids, "Input")}
    good = True
    for role, (node_id, ids, kind) in wanted.items():
        if node_id not in ids:
            said = "is not set" if node_id is None else f"'{node_id[:40]}' is not an {kind} node"
            checker.report(None, f"the GAN's {role} {said}", f"set training.gan.{role} to one of: "
                           + ", ".join(ids), f"{SECTION}.{role}")
            good = False
    if gan.generator == gan.discriminator is not None or gan.noise == gan.real is not None:
        checker.report(None, "the GAN's generator and discriminator must be different parts",
                       "name two different Outputs, and two different Inputs", SECTION)
        good = False
    if not good:
        return None
    assert gan.generator and gan.discriminator and gan.noise and gan.real
    return gan.generator, gan.discriminator, gan.noise, gan.real


def _reads(checker: _Checker, generator: str, discriminator: str, noise: str, real: str) -> None:
    """The generator reads only the noise, the discriminator only the real data."""
    links = checker.analysis.links
    for part, own in ((generator, noise), (discriminator, real)):
        inputs = live_nodes([part], links) & set(checker.input_ids)
        if own not in inputs:
            checker.report(part, f"'{part}' does not depend on its Input '{own}'",
                           f"connect '{own}' through the layers that lead to '{part}'", SECTION)
        extra = sorted(inputs - {own})
        if extra:
            checker.report(part, f"'{part}' reads {', '.join(extra)} besides '{own}'; a GAN's generator "
                           "reads only its noise and its discriminator only the data",
                           f"disconnect {', '.join(extra)} from the layers that lead to '{part}'", SECTION)


def _shapes(checker: _Checker, generator: str, discriminator: str, noise: str, real: str) -> None:
    ports = checker.analysis.ports
    made, data = ports.get((generator, "output")), ports.get((real, "output"))
    if made is not None and data is not None and not _same(made, data):
        checker.report(generator, f"the generator gives {made} but the real data '{real}' is {data}",
                       f"make the generator's last layers produce {list(data.shape[1:])}", SECTION)
    seed = ports.get((noise, "output"))
    if seed is not None and not seed.is_float:
        checker.report(noise, f"the noise Input '{noise}' has dtype {seed.dtype}; noise is drawn as numbers",
                       "set its dtype to float32", "dtype")
    if seed is not None and not all(isinstance(d, int) for d in seed.shape[1:]):
        checker.report(noise, f"the noise Input '{noise}' has shape {seed}; noise is drawn at fixed sizes",
                       "give it sizes that are numbers, such as [64]", "shape")
    score = ports.get((discriminator, "output"))
    if score is not None and (not score.is_float or score.shape[1:] not in ((), (1,))):
        checker.report(discriminator, f"the discriminator must give one score per sample, but "
                       f"'{discriminator}' gives {score}",
                       "end it with Flatten and Linear(out_features=1)", SECTION)


def _same(made: TensorType, data: TensorType) -> bool:
    """Equal per-sample shapes (symbolic sizes fit anything) and both floating-point."""
    a, b = made.shape[1:], data.shape[1:]
    sizes = len(a) == len(b) and all(not isinstance(x, int) or not isinstance(y, int) or x == y
                                     for x, y in zip(a, b, strict=True))
    return sizes and made.is_float and data.is_float
