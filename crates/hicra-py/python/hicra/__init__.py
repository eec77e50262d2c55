"""hicra: HICRA (hierarchy-aware credit assignment), Strategic Grams, hierarchy metrics and
a fast eval-free math verifier, from the same Rust code as the ``hicra`` binary.

``import hicra`` needs only numpy. The integrations import their frameworks lazily:
``hicra.trl`` needs torch, transformers and TRL 1.16 (``pip install hicra[trl]``, with PEFT
``hicra[lora]``), ``hicra.verl`` needs verl 0.9.1 for its registry and launcher
(``pip install hicra[verl]``); ``hicra.versions.SUPPORTED`` names the supported releases.

Submodules: :mod:`hicra.verify`, :mod:`hicra.rewards`, :mod:`hicra.grams`,
:mod:`hicra.advantages`, :mod:`hicra.versions`, :mod:`hicra.trl`, :mod:`hicra.verl`.
"""

from hicra import advantages, grams, rewards, verify, versions
from hicra._native import RustPanicError, __version__
from hicra.advantages import apply_hicra
from hicra.grams import StrategicGrams, semantic_entropy
from hicra.verify import grade, grade_batch

__all__ = [
    "RustPanicError",
    "StrategicGrams",
    "__version__",
    "advantages",
    "apply_hicra",
    "grade",
    "grade_batch",
    "grams",
    "rewards",
    "semantic_entropy",
    "verify",
    "versions",
]
