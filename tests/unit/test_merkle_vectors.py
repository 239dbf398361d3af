"""The transparency-dev/merkle proof vectors: verification and generation agree with them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tracker.audit.merkle import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    nodes_completed_by_append,
    root,
    unb64,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "data" / "merkle"

# transparency-dev/merkle testonly.LeafInputs(): the RFC 6962 reference tree the happy paths
# use; the single-entry vectors hash the leaf b"data".
RFC6962_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
KNOWN_TREES = [RFC6962_LEAVES, [b"data"]]


def _load(kind: str) -> dict[str, dict[str, Any]]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no {kind} vectors under {VECTORS}"
    return {str(f.relative_to(VECTORS)): json.loads(f.read_text()) for f in files}


def _params(cases: dict[str, dict[str, Any]], want_err: bool | None = None) -> list[Any]:
    return [
        pytest.param(case, id=name)
        for name, case in cases.items()
        if want_err is None or case["wantErr"] == want_err
    ]


def _hashes(values: list[str] | None) -> list[bytes]:
    return [unb64(v) for v in values or []]


Store = dict[tuple[int, int], bytes]


def _getter(store: Store) -> Callable[[int, int], bytes]:
    return lambda level, index: store[(level, index)]


def _store(leaves: list[bytes]) -> Store:
    store: Store = {}
    for i, data in enumerate(leaves):
        store[(0, i)] = leaf_hash(data)
        for level, index, h in nodes_completed_by_append(i, _getter(store), store[(0, i)]):
            store[(level, index)] = h
    return store


def _rebuild(size: int, want_root: bytes) -> Store | None:
    """A store of a known tree whose prefix of `size` leaves has `want_root`, if any."""
    for leaves in KNOWN_TREES:
        if 0 < size <= len(leaves):
            store = _store(leaves[:size])
            if root(size, _getter(store)) == want_root:
                return store
    return None


INCLUSION = _load("inclusion")
CONSISTENCY = _load("consistency")


def test_every_vector_file_is_collected() -> None:
    assert len(INCLUSION) + len(CONSISTENCY) == len(list(VECTORS.rglob("*.json"))) == 196


@pytest.mark.parametrize("case", _params(INCLUSION))
def test_inclusion_vector(case: dict[str, Any]) -> None:
    args = (
        case["leafIdx"],
        case["treeSize"],
        unb64(case["leafHash"]),
        _hashes(case["proof"]),
        unb64(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("case", _params(CONSISTENCY))
def test_consistency_vector(case: dict[str, Any]) -> None:
    args = (
        case["size1"],
        case["size2"],
        unb64(case["root1"]),
        unb64(case["root2"]),
        _hashes(case["proof"]),
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


@pytest.mark.parametrize("case", _params(INCLUSION, want_err=False))
def test_inclusion_proof_generation_reproduces_vector(case: dict[str, Any]) -> None:
    store = _rebuild(case["treeSize"], unb64(case["root"]))
    if store is None:
        pytest.skip("the vector's tree is not one we can rebuild")
    index = case["leafIdx"]
    assert store[(0, index)] == unb64(case["leafHash"])
    got = inclusion_proof(index, case["treeSize"], _getter(store))
    assert got == _hashes(case["proof"])


@pytest.mark.parametrize("case", _params(CONSISTENCY, want_err=False))
def test_consistency_proof_generation_reproduces_vector(case: dict[str, Any]) -> None:
    store = _rebuild(case["size2"], unb64(case["root2"]))
    if store is None:
        pytest.skip("the vector's roots are placeholders, not a tree we can rebuild")
    get = _getter(store)
    assert root(case["size1"], get) == unb64(case["root1"])
    assert consistency_proof(case["size1"], case["size2"], get) == _hashes(case["proof"])


def test_only_the_placeholder_root_vector_cannot_be_rebuilt() -> None:
    rebuilt = [
        c
        for c in INCLUSION.values()
        if not c["wantErr"] and _rebuild(c["treeSize"], unb64(c["root"]))
    ]
    rebuilt += [
        c
        for c in CONSISTENCY.values()
        if not c["wantErr"] and _rebuild(c["size2"], unb64(c["root2"]))
    ]
    # 5 inclusion + 1 single-entry + 5 consistency happy paths: generation is really checked.
    assert len(rebuilt) == 11
