"""Checks of the ``vae`` task's settings (``training.vae``) against the graph: an encoder from
the data Input to two Outputs, ``mu`` and ``logvar`` of one shape, and a decoder from its own
latent Input (of that shape) to an Output of the data's shape.
"""

from __future__ import annotations

from collections.abc import Callable

from dlstudio.core.findings import Analysis
from dlstudio.core.tensor import TensorType
from dlstudio.core.training import TrainingConfig, VaeConfig
from dlstudio.core.wiring import live_nodes

SECTION = "training.vae"
EXAMPLE = ('"vae": {"data": "<Input id>", "mu": "<Output id>", "logvar": "<Output id>", '
           '"latent": "<Input id>", "decoder": "<Output id>"}')

Report = Callable[..., None]


def check_vae(config: TrainingConfig, analysis: Analysis, report: Report) -> None:
    """Every problem of a VAE's settings, each told to ``report(node, message, fix, param,
    severity)``."""
    vae = config.vae
    if vae is None:
        report(None, "a VAE needs training.vae to name its encoder's and decoder's nodes", f"add {EXAMPLE}",
               SECTION)
        return
    if config.metrics:
        report(None, "a VAE reports its reconstruction and KL losses, not metrics", "remove training.metrics",
               "training.metrics", "warning")
    if vae.latent is not None and vae.latent in config.dataset.inputs:
        report(vae.latent, f"the latent Input '{vae.latent}' is bound to dataset field "
               f"'{config.dataset.inputs[vae.latent]}', but the task feeds it z",
               f"remove \"{vae.latent}\" from training.dataset.inputs", "training.dataset.inputs")
    if _roles(analysis, vae, report):
        _reads(analysis, vae, report)
        _shapes(analysis, vae, report)


def vae_fed_inputs(config: TrainingConfig, input_ids: list[str]) -> set[str]:
    """Inputs that need no dataset field: a VAE's latent (every Input while the section, which
    says which is which, is missing)."""
    if config.task != "vae":
        return set()
    return {config.vae.latent} if config.vae is not None and config.vae.latent else set(input_ids)


def _ids(analysis: Analysis, kind: str) -> list[str]:
    return [n.id for n in analysis.graph.nodes if n.type == kind]


def _roles(analysis: Analysis, vae: VaeConfig, report: Report) -> bool:
    """Whether each role names a node of its kind, and no two roles the same node."""
    inputs, outputs = _ids(analysis, "Input"), _ids(analysis, "Output")
    wanted = {"data": (vae.data, inputs, "Input"), "mu": (vae.mu, outputs, "Output"),
              "logvar": (vae.logvar, outputs, "Output"), "latent": (vae.latent, inputs, "Input"),
              "decoder": (vae.decoder, outputs, "Output")}
    good = True
    for role, (node_id, ids, kind) in wanted.items():
        if node_id not in ids:
            said = "is not set" if node_id is None else f"'{node_id[:40]}' is not an {kind} node"
            known = ", ".join(ids) or f"none: add an {kind} node"
            report(None, f"the VAE's {role} {said}", f"set training.vae.{role} to one of: {known}",
                   f"{SECTION}.{role}")
            good = False
    named = [vae.data, vae.mu, vae.logvar, vae.latent, vae.decoder]
    if good and len(set(named)) < len(named):
        report(None, "the VAE's data, mu, logvar, latent and decoder must be five different nodes",
               "name the encoder's two Outputs, the decoder's Output and the two Inputs apart", SECTION)
        good = False
    return good


def _reads(analysis: Analysis, vae: VaeConfig, report: Report) -> None:
    """The encoder's Outputs read only the data, the decoder's only the latent Input."""
    inputs = set(_ids(analysis, "Input"))
    for output, own, part in ((vae.mu, vae.data, "encoder"), (vae.logvar, vae.data, "encoder"),
                              (vae.decoder, vae.latent, "decoder")):
        assert output is not None and own is not None
        read = live_nodes([output], analysis.links) & inputs
        if own not in read:
            report(output, f"'{output}' does not depend on its Input '{own}'",
                   f"connect '{own}' through the layers that lead to '{output}'", SECTION)
        extra = sorted(read - {own})
        if extra:
            report(output, f"'{output}' reads {', '.join(extra)} besides '{own}'; a VAE's {part} reads only "
                   f"'{own}'", f"disconnect {', '.join(extra)} from the layers that lead to '{output}'", SECTION)


def _shapes(analysis: Analysis, vae: VaeConfig, report: Report) -> None:
    ports = analysis.ports
    mu, logvar = ports.get((vae.mu or "", "output")), ports.get((vae.logvar or "", "output"))
    latent = ports.get((vae.latent or "", "output"))
    if mu is not None and logvar is not None and (mu.shape[1:] != logvar.shape[1:] or not _floats(mu, logvar)):
        report(vae.logvar, f"mu and logvar must be numbers of one shape, but '{vae.mu}' gives {mu} and "
               f"'{vae.logvar}' gives {logvar}", f"make the layers before '{vae.logvar}' produce "
               f"{list(mu.shape[1:])} as those before '{vae.mu}' do (two Linear layers of one width)", SECTION)
    elif mu is not None and latent is not None and (mu.shape[1:] != latent.shape[1:] or not latent.is_float):
        report(vae.latent, f"the latent Input '{vae.latent}' gets z, shaped like mu {mu}, but it is "
               f"{latent.dtype} {latent}", f"set its shape to {list(mu.shape[1:])} and dtype float32", "shape")
    if mu is not None and not all(isinstance(d, int) for d in mu.shape[1:]):
        report(vae.mu, f"the latent size must be fixed, but '{vae.mu}' gives {mu}",
               "end the encoder with Linear layers", SECTION)
    made, data = ports.get((vae.decoder or "", "output")), ports.get((vae.data or "", "output"))
    if made is not None and data is not None and (made.shape[1:] != data.shape[1:] or not _floats(made, data)):
        report(vae.decoder, f"the decoder gives {made} but the data '{vae.data}' is {data}",
               f"make the decoder's last layers produce {list(data.shape[1:])}", SECTION)


def _floats(*tensors: TensorType) -> bool:
    return all(t.is_float for t in tensors)
