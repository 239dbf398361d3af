"""Properties of the Merkle tree code: proofs verify, tampering fails, reads stay O(log n)."""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.audit.merkle import (
    EMPTY_ROOT,
    IncrementalTree,
    ProofError,
    b64,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    nodes_completed_by_append,
    nodes_needed,
    root,
    subtree_hash,
    unb64,
    verify_consistency,
    verify_inclusion,
)

Getter = Callable[[int, int], bytes]


def reference_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written as plainly as the RFC states it."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(reference_mth(leaves[:k]), reference_mth(leaves[k:]))


def leaves_for(seed: int, n: int) -> list[bytes]:
    return [leaf_hash(hashlib.sha256(f"{seed}:{i}".encode()).digest()) for i in range(n)]


class Dense:
    """A tree stored as the tracker stores it: leaves plus every completed perfect subtree."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.nodes: dict[tuple[int, int], bytes] = {}
        for i, leaf in enumerate(leaves):
            self.nodes[(0, i)] = leaf
            for level, index, h in nodes_completed_by_append(i, self.get, leaf):
                self.nodes[(level, index)] = h

    def get(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def getter_for(self, size: int) -> Getter:
        """A getter that fails on any node not complete in the tree of `size` leaves."""

        def get(level: int, index: int) -> bytes:
            assert (index + 1) << level <= size, f"read ({level}, {index}) beyond size {size}"
            return self.nodes[(level, index)]

        return get


class Sparse:
    """A huge tree of default leaves with a few random ones; nodes synthesised lazily."""

    def __init__(self, seed: int, size: int, special: list[int]) -> None:
        self.size = size
        self.special = sorted(set(special))
        self.seed = seed
        self.default = [leaf_hash(b"default")]
        for _ in range(size.bit_length() + 1):
            self.default.append(node_hash(self.default[-1], self.default[-1]))
        self.reads = 0
        self._node = lru_cache(maxsize=None)(self._compute)

    def leaf(self, i: int) -> bytes:
        return self._node(0, i)

    def _compute(self, level: int, index: int) -> bytes:
        lo, hi = index << level, (index + 1) << level
        j = bisect.bisect_left(self.special, lo)
        if j == len(self.special) or self.special[j] >= hi:
            return self.default[level]
        if level == 0:
            return leaf_hash(f"{self.seed}:{index}".encode())
        return node_hash(self._node(level - 1, 2 * index), self._node(level - 1, 2 * index + 1))

    def get(self, level: int, index: int) -> bytes:
        assert (index + 1) << level <= self.size, f"read ({level}, {index}) beyond {self.size}"
        self.reads += 1
        return self._node(level, index)


def flipped(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    changed = bytearray(proof[i])
    changed[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:i], bytes(changed), *proof[i + 1 :]]


def assert_rejected(verify: Callable[..., None], *args: object) -> None:
    # A bare try is ~10x cheaper than pytest.raises, which matters over 256 bits per hash.
    try:
        verify(*args)
    except ProofError:
        return
    raise AssertionError("a tampered proof verified")


FAST = settings(max_examples=60, deadline=None)
TAMPER = settings(max_examples=30, deadline=None)


# --- building the tree ------------------------------------------------------------------


@FAST
@given(seed=st.integers(0, 2**32), n=st.integers(0, 300))
def test_stored_nodes_are_exactly_the_perfect_subtrees(seed: int, n: int) -> None:
    tree = Dense(leaves_for(seed, n))
    want = {(level, index) for level in range(n.bit_length() + 1) for index in range(n >> level)}
    assert set(tree.nodes) == want
    for (level, index), h in tree.nodes.items():
        assert h == reference_mth(tree.leaves[index << level : (index + 1) << level])


@FAST
@given(seed=st.integers(0, 2**32), n=st.integers(0, 300))
def test_incremental_tree_and_stored_root_agree_for_every_prefix(seed: int, n: int) -> None:
    tree = Dense(leaves_for(seed, n))
    inc = IncrementalTree()
    assert inc.root() == EMPTY_ROOT == root(0, tree.get)
    for i, leaf in enumerate(tree.leaves):
        completed = inc.append(leaf)
        assert completed == nodes_completed_by_append(i, tree.get, leaf)
        assert inc.size == i + 1
        assert inc.root() == root(i + 1, tree.getter_for(i + 1))
    assert root(n, tree.get) == reference_mth(tree.leaves)


@FAST
@given(seed=st.integers(0, 2**32), n=st.integers(1, 300), data=st.data())
def test_subtree_hash_of_any_range_is_its_mth(seed: int, n: int, data: st.DataObject) -> None:
    tree = Dense(leaves_for(seed, n))
    start = data.draw(st.integers(0, n))
    end = data.draw(st.integers(start, n))
    assert subtree_hash(start, end, tree.get) == reference_mth(tree.leaves[start:end])


@FAST
@given(seed=st.integers(0, 2**32), n=st.integers(0, 300), data=st.data())
def test_resumed_incremental_tree_continues_like_a_fresh_one(
    seed: int, n: int, data: st.DataObject
) -> None:
    tree = Dense(leaves_for(seed, n))
    cut = data.draw(st.integers(0, n))
    resumed = IncrementalTree.resume(cut, tree.getter_for(cut))
    assert resumed.size == cut and resumed.root() == reference_mth(tree.leaves[:cut])
    for i in range(cut, n):
        assert resumed.append(tree.leaves[i]) == nodes_completed_by_append(
            i, tree.get, tree.leaves[i]
        )
    assert resumed.root() == root(n, tree.get)


@FAST
@given(seed=st.integers(0, 2**32), n=st.integers(0, 300), data=st.data())
def test_extending_in_chunks_is_appending_one_by_one(
    seed: int, n: int, data: st.DataObject
) -> None:
    tree = Dense(leaves_for(seed, n))
    start = data.draw(st.integers(0, n))
    inc = IncrementalTree.resume(start, tree.getter_for(start))
    while inc.size < n:
        chunk = data.draw(st.integers(0, n - inc.size))
        inc.extend(tree.leaves[inc.size : inc.size + chunk])
        assert inc.root() == reference_mth(tree.leaves[: inc.size])
    assert inc.size == n and inc.root() == root(n, tree.get)
    # It goes on like a tree that got every leaf by append.
    one_by_one = IncrementalTree()
    for leaf in tree.leaves:
        one_by_one.append(leaf)
    extra = leaves_for(seed + 1, 5)
    for leaf in extra:
        assert inc.append(leaf) == one_by_one.append(leaf)
    assert inc.root() == one_by_one.root()


def test_appends_read_one_node_on_average_and_log_n_at_most() -> None:
    reads: list[int] = []
    tree = Dense([])
    for i, leaf in enumerate(leaves_for(7, 4096)):
        count = 0

        def get(level: int, index: int) -> bytes:
            nonlocal count
            count += 1
            return tree.nodes[(level, index)]

        tree.nodes[(0, i)] = leaf
        for level, index, h in nodes_completed_by_append(i, get, leaf):
            tree.nodes[(level, index)] = h
        reads.append(count)
    assert max(reads) == 12 and sum(reads) < len(reads)


# --- proofs on dense trees ----------------------------------------------------------------


@TAMPER
@given(seed=st.integers(0, 2**32), n=st.integers(1, 300), data=st.data())
def test_inclusion_proofs_verify_and_tampering_fails(
    seed: int, n: int, data: st.DataObject
) -> None:
    tree = Dense(leaves_for(seed, n))
    index = data.draw(st.integers(0, n - 1))
    r = root(n, tree.get)
    leaf = tree.leaves[index]
    proof = inclusion_proof(index, n, tree.getter_for(n))
    verify_inclusion(index, n, leaf, proof, r)

    for i in range(len(proof)):
        for bit in range(256):
            assert_rejected(verify_inclusion, index, n, leaf, flipped(proof, i, bit), r)
    for bit in range(0, 256, 7):
        assert_rejected(verify_inclusion, index, n, flipped([leaf], 0, bit)[0], proof, r)
        assert_rejected(verify_inclusion, index, n, leaf, proof, flipped([r], 0, bit)[0])
    if proof:
        assert_rejected(verify_inclusion, index, n, leaf, proof[:-1], r)
        assert_rejected(verify_inclusion, index, n, leaf, proof[1:], r)
    assert_rejected(verify_inclusion, index, n, leaf, [*proof, r], r)
    assert_rejected(verify_inclusion, index, n, leaf, [r, *proof], r)
    assert_rejected(verify_inclusion, index, n, leaf, [*proof, b""], r)
    other = data.draw(st.integers(0, n - 1).filter(lambda j: j != index)) if n > 1 else n
    assert_rejected(verify_inclusion, other, n, leaf, proof, r)
    assert_rejected(verify_inclusion, index + 1, n, leaf, proof, r)
    assert_rejected(verify_inclusion, index, 2 * n, leaf, proof, r)
    assert_rejected(verify_inclusion, index, n // 2, leaf, proof, r)
    assert_rejected(verify_inclusion, index, index, leaf, proof, r)


@TAMPER
@given(seed=st.integers(0, 2**32), n=st.integers(1, 300), data=st.data())
def test_consistency_proofs_verify_and_tampering_fails(
    seed: int, n: int, data: st.DataObject
) -> None:
    tree = Dense(leaves_for(seed, n))
    m = data.draw(st.integers(1, n))
    r1, r2 = root(m, tree.get), root(n, tree.get)
    proof = consistency_proof(m, n, tree.getter_for(n))
    verify_consistency(m, n, r1, r2, proof)
    if m == n:
        assert proof == []
        assert_rejected(verify_consistency, m, n, r1, r1[::-1], proof)
        assert_rejected(verify_consistency, m, n, r1, r2, [r1])
        return

    for i in range(len(proof)):
        for bit in range(256):
            assert_rejected(verify_consistency, m, n, r1, r2, flipped(proof, i, bit))
    for bit in range(0, 256, 7):
        assert_rejected(verify_consistency, m, n, flipped([r1], 0, bit)[0], r2, proof)
        assert_rejected(verify_consistency, m, n, r1, flipped([r2], 0, bit)[0], proof)
    for wrong in ([], proof[:-1], proof[1:], [*proof, r1], [r2, *proof], [proof[0], *proof]):
        assert_rejected(verify_consistency, m, n, r1, r2, wrong)
    assert_rejected(verify_consistency, m, n, r2, r1, proof)
    for m2, n2 in ((m - 1, n), (m + 1, n), (m ^ 2, n), (m, 2 * n), (m, n // 2), (0, n), (n, m)):
        assert_rejected(verify_consistency, m2, n2, r1, r2, proof)


def test_proofs_for_every_index_and_size_up_to_64() -> None:
    tree = Dense(leaves_for(1, 64))
    for n in range(1, 65):
        r = root(n, tree.get)
        for i in range(n):
            verify_inclusion(i, n, tree.leaves[i], inclusion_proof(i, n, tree.getter_for(n)), r)
        for m in range(1, n + 1):
            verify_consistency(
                m, n, root(m, tree.get), r, consistency_proof(m, n, tree.getter_for(n))
            )


def test_an_inclusion_proof_does_not_bind_the_tree_size() -> None:
    # Why heads are signed over (size, root) together: the path for leaf 0 of 5 leaves
    # also "verifies" with size 6, so a verifier must take the size from a signed head.
    tree = Dense(leaves_for(3, 5))
    proof = inclusion_proof(0, 5, tree.get)
    verify_inclusion(0, 6, tree.leaves[0], proof, root(5, tree.get))


def test_bad_arguments_to_proof_generation_are_refused() -> None:
    tree = Dense(leaves_for(2, 8))
    for index, size in ((0, 0), (8, 8), (-1, 8)):
        with pytest.raises(ValueError, match="index"):
            inclusion_proof(index, size, tree.get)
    for old, new in ((0, 8), (0, 0), (5, 4), (-1, 3)):
        with pytest.raises(ValueError, match="old_size"):
            consistency_proof(old, new, tree.get)
    with pytest.raises(ValueError):
        subtree_hash(5, 4, tree.get)
    assert consistency_proof(8, 8, tree.get) == []


def test_nodes_needed_lists_the_reads_of_a_computation() -> None:
    tree = Dense(leaves_for(4, 100))
    keys = nodes_needed(lambda get: inclusion_proof(37, 100, get))
    fetched = {key: tree.nodes[key] for key in keys}
    assert inclusion_proof(37, 100, lambda lv, ix: fetched[(lv, ix)]) == inclusion_proof(
        37, 100, tree.get
    )
    assert nodes_needed(lambda get: root(100, get)) == [(6, 0), (5, 2), (2, 24)]


# --- huge sparse trees and read counts ------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(2, 2**40), data=st.data())
def test_proofs_on_huge_sparse_trees(seed: int, n: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(1, n))
    extra = data.draw(st.lists(st.integers(0, n - 1), max_size=5))
    tree = Sparse(seed, n, [index, m - 1, *extra])
    r = root(n, tree.get)
    proof = inclusion_proof(index, n, tree.get)
    verify_inclusion(index, n, tree.leaf(index), proof, r)
    assert_rejected(verify_inclusion, index, n, tree.leaf(index), flipped(proof, 0, 9), r)
    cproof = consistency_proof(m, n, tree.get)
    verify_consistency(m, n, root(m, tree.get), r, cproof)
    if cproof:
        last = len(cproof) - 1
        assert_rejected(verify_consistency, m, n, root(m, tree.get), r, flipped(cproof, last, 200))
    assert IncrementalTree.resume(n, tree.get).root() == r


def synthesised(level: int, index: int) -> bytes:
    return hashlib.sha256(f"{level}/{index}".encode()).digest()


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 2**20), data=st.data())
def test_proofs_read_at_most_two_log_n_nodes(n: int, data: st.DataObject) -> None:
    bound = 2 * math.ceil(math.log2(n))
    index = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(1, n))
    # Why the bound holds: every path hash is one perfect node except at most one right
    # sibling on the tree's right border, which costs popcount(its size) <= log2 n reads.
    assert len(nodes_needed(lambda get: inclusion_proof(index, n, get))) <= bound
    assert len(nodes_needed(lambda get: consistency_proof(m, n, get))) <= bound
    assert len(nodes_needed(lambda get: root(n, get))) == n.bit_count()
    calls = 0

    def counting(level: int, index: int) -> bytes:
        nonlocal calls
        calls += 1
        return synthesised(level, index)

    inclusion_proof(index, n, counting)
    consistency_proof(m, n, counting)
    assert calls <= 2 * bound


# --- base64 ---------------------------------------------------------------------------------


@given(st.binary(max_size=64))
def test_base64_round_trips(raw: bytes) -> None:
    assert unb64(b64(raw)) == raw


@pytest.mark.parametrize(
    "text", ["A", "AA=", "AA==A", "QR==", "QQ", "Q Q==", "Q\nQ==", "QQ-_", "é", "QQ=="[:3]]
)
def test_unb64_rejects_anything_but_canonical_standard_base64(text: str) -> None:
    with pytest.raises(ProofError):
        unb64(text)


def test_incremental_tree_refuses_a_hash_of_the_wrong_size() -> None:
    with pytest.raises(ProofError):
        IncrementalTree().append(b"short")
    tree = IncrementalTree()
    with pytest.raises(ProofError):
        tree.extend([leaf_hash(b"a"), b"short"])
    assert tree.size == 0 and tree.root() == EMPTY_ROOT
