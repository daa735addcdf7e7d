"""Helper ``nn.Module`` classes of one layer family each (``<family>.py``), registered with
:func:`dlstudio.core.modules.support` like those in :mod:`dlstudio.core.modules` itself, which
imports every module here. The same rules hold: self-contained classes using only ``torch``,
``nn``, ``F`` and ``math``, formatted as ``ruff format`` writes them (the exporter copies them).
"""
