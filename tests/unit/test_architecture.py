"""The import graph keeps the architecture: the report and the trainer never reach the extraction stack,
no top-level part imports one that imports it back, and the contracts in pyproject.toml hold.

Walked statically with grimp (import-linter's graph), so imports inside functions count, and with the
name registries (dataset readers, extractors, AU backends, models) added as the imports they are at
run time: a fresh interpreter's ``sys.modules`` (``tests/train/test_layering.py``) only sees what
importing a module loads, not what calling it loads.
"""

from __future__ import annotations

import copy
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]
EXTRACTION_STACK = ("emoprep.extraction", "dask", "distributed", "tensorflow", "mediapipe", "disvoice", "phonet", "opensmile")
CONSUMERS = ("emoprep.report", "emoprep.train", "emoprep.format")


def _registry_targets() -> dict[str, list[str]]:
    """``{registry module: [module it imports by name at run time]}``."""
    from emoprep.extraction import extractors
    from emoprep.extraction import readers as datasets
    from emoprep.extraction.extractors import au
    from emoprep.train import models

    def modules(table: dict[str, str | None]) -> list[str]:
        return sorted({t.partition(":")[0] for t in table.values() if t})

    return {
        "emoprep.extraction.readers": modules(datasets.READERS),
        "emoprep.extraction.extractors": modules(extractors.EXTRACTORS),
        "emoprep.extraction.extractors.au": modules(au.AU_BACKENDS),
        "emoprep.train.models": [f"emoprep.train.models.{m}" for m in models._MODULES],
    }


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    g = grimp.build_graph("emoprep", include_external_packages=True)
    for importer, targets in _registry_targets().items():
        for target in targets:
            g.add_import(importer=importer, imported=target)
    return g


def _reached(g: grimp.ImportGraph, source: str, forbidden: tuple[str, ...]) -> list[str]:
    upstream = g.find_upstream_modules(source, as_package=True)
    return sorted(m for m in upstream if any(m == f or m.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_consumers_of_the_shards_never_reach_the_extraction_stack(graph: grimp.ImportGraph, consumer: str) -> None:
    assert _reached(graph, consumer, EXTRACTION_STACK) == []


def test_the_walk_would_see_an_import_made_inside_a_function(graph: grimp.ImportGraph) -> None:
    """The check above can fail: one import from a report function into an extractor is found, with
    every module that import drags in after it."""
    g = copy.deepcopy(graph)
    g.add_import(importer="emoprep.report.shard_folder", imported="emoprep.extraction.extractors.features142")
    assert "emoprep.extraction.extractors.features142" in _reached(g, "emoprep.report", EXTRACTION_STACK)
    g.add_import(importer="emoprep.train.inputs", imported="emoprep.extraction.engine.worker")
    reached = _reached(g, "emoprep.train", EXTRACTION_STACK)
    assert {"emoprep.extraction.engine.worker", "emoprep.extraction.media.segment"} <= set(reached)


def _top_level_cycles(g: grimp.ImportGraph) -> list[list[str]]:
    parts = sorted({m.split(".")[1] for m in g.modules if m.startswith("emoprep.")})
    edges = {a: {b for b in parts if b != a and g.direct_import_exists(
        importer=f"emoprep.{a}", imported=f"emoprep.{b}", as_packages=True)} for a in parts}
    cycles, state = [], dict.fromkeys(parts, 0)

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state[nxt] == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif state[nxt] == 0:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for part in parts:
        if state[part] == 0:
            visit(part, [part])
    return cycles


def test_no_import_cycle_between_top_level_parts(graph: grimp.ImportGraph) -> None:
    assert _top_level_cycles(graph) == []
    g = copy.deepcopy(graph)
    g.add_import(importer="emoprep.format.names", imported="emoprep.extraction.records")
    assert ["extraction", "format", "extraction"] in _top_level_cycles(g)


def test_import_contracts_in_pyproject_hold() -> None:
    """``lint-imports`` (the README's test command runs it too): layers from the CLI down to
    emoprep.format, and the forbidden imports."""
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True) == 0
