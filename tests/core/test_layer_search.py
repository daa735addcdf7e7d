"""Search ranks an exact name, then a prefix, then a substring, then a description match."""

from __future__ import annotations

import pytest

from dlstudio.core.catalogue import CATALOGUE
from dlstudio.core.layer_search import DESCRIPTION, EXACT, PREFIX, SUBSTRING, match_rank, search_key


def best(query: str) -> list[str]:
    keys = {spec.type: search_key(query, spec.type, f"{spec.family} {spec.summary}")
            for spec in CATALOGUE.values()}
    return sorted((name for name, key in keys.items() if key is not None), key=lambda n: keys[n])


def test_each_kind_of_match_has_its_rank() -> None:
    assert match_rank("ReLU", "ReLU", "Activation") == EXACT
    assert match_rank("relu", "ReLU6", "Activation") == PREFIX
    assert match_rank("relu", "LeakyReLU", "Activation") == SUBSTRING
    assert match_rank("relu", "Hardswish", "Activation like relu6") == DESCRIPTION
    assert match_rank("relu", "Linear", "Dense") is None
    assert match_rank("", "Linear", "Dense") == PREFIX


@pytest.mark.parametrize(("query", "first"), [("relu", "ReLU"), ("linear", "Linear"),
                                              ("conv2d", "Conv2d"), ("  GELU ", "GELU")])
def test_the_exact_name_comes_first(query, first) -> None:
    assert best(query)[0] == first


def test_name_matches_come_before_description_matches() -> None:
    ranked = best("relu")
    ranks = [match_rank("relu", name, f"{CATALOGUE[name].family} {CATALOGUE[name].summary}")
             for name in ranked]
    assert ranks == sorted(ranks) and DESCRIPTION in ranks and SUBSTRING in ranks
    assert ranks[ranked.index("LeakyReLU")] == SUBSTRING and ranks[-1] == DESCRIPTION
