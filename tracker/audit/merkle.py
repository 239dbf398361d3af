"""RFC 9162 Merkle tree hashing, proofs and verification over stored perfect subtrees."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
_sha256 = hashlib.sha256

# get(level, index): the stored hash of leaves [index * 2**level, (index + 1) * 2**level).
Getter = Callable[[int, int], bytes]

# RFC 9162 §2.1.1: the hash of an empty list is the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof, a hash or its encoding failed verification."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def b64(data: bytes) -> str:
    """Standard padded base64, as hashes appear in JSON."""
    # What base64.b64encode does, without its Python-level wrapper (one call per leaf).
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def unb64(text: str) -> bytes:
    """Decode standard padded base64 strictly, raising ProofError on anything else."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ProofError(f"invalid base64: {text[:60]!r}") from exc
    # b64decode tolerates non-zero padding bits; re-encoding rejects every non-canonical form.
    if b64(raw) != text:
        raise ProofError(f"non-canonical base64: {text[:60]!r}")
    return raw


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2), RFC 9162's split point."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_perfect(start: int, n: int) -> bool:
    return n & (n - 1) == 0 and start % n == 0


# --- computations over stored nodes -------------------------------------------------------


def nodes_completed_by_append(i: int, get: Getter, leaf: bytes) -> list[tuple[int, int, bytes]]:
    """The (level, index, hash) perfect subtrees, level >= 1, that appending leaf i completes."""
    if i < 0:
        raise ValueError(f"leaf index must be >= 0, got {i}")
    completed: list[tuple[int, int, bytes]] = []
    current, index, level = leaf, i, 0
    # A right child (odd index) completes its parent; each trailing 1 bit of i is one more level.
    while index & 1:
        current = node_hash(get(level, index - 1), current)
        index >>= 1
        level += 1
        completed.append((level, index, current))
    return completed


def subtree_hash(start: int, end: int, get: Getter) -> bytes:
    """MTH of leaves [start, end), read from perfect aligned nodes only."""
    if not 0 <= start <= end:
        raise ValueError(f"bad range [{start}, {end})")
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if _is_perfect(start, n):
        return get(n.bit_length() - 1, start // n)
    k = _split(n)
    return node_hash(subtree_hash(start, start + k, get), subtree_hash(start + k, end, get))


def root(size: int, get: Getter) -> bytes:
    """The root hash of the tree of the first ``size`` leaves (popcount(size) node reads)."""
    return subtree_hash(0, size, get)


def inclusion_proof(index: int, size: int, get: Getter) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), leaf-side hash first."""
    if not 0 <= index < size:
        raise ValueError(f"need 0 <= index < size, got index {index}, size {size}")
    path: list[bytes] = []
    start, n, m = 0, size, index
    # Walk down from the root; RFC order is bottom-up, so reverse at the end.
    while n > 1:
        k = _split(n)
        if m < k:
            path.append(subtree_hash(start + k, start + n, get))
            n = k
        else:
            path.append(subtree_hash(start, start + k, get))
            start, n, m = start + k, n - k, m - k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, get: Getter) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[0:new_size]); empty when the sizes are equal."""
    if not 0 < old_size <= new_size:
        # RFC 9162 defines proofs for 0 < m <= n only: every tree extends the empty tree.
        raise ValueError(f"need 0 < old_size <= new_size, got {old_size}, {new_size}")
    proof: list[bytes] = []
    start, n, m, whole = 0, new_size, old_size, True
    while m != n:
        k = _split(n)
        if m <= k:
            proof.append(subtree_hash(start + k, start + n, get))
            n = k
        else:
            proof.append(subtree_hash(start, start + k, get))
            start, n, m, whole = start + k, n - k, m - k, False
    if not whole:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old tree's subtree the verifier lacks.
        proof.append(subtree_hash(start, start + n, get))
    proof.reverse()
    return proof


def nodes_needed(computation: Callable[[Getter], object]) -> list[tuple[int, int]]:
    """The (level, index) keys a computation reads, in order, so a caller can fetch them at once.

    Which nodes a computation reads depends only on sizes and indices, never on hash values,
    so a dry run with placeholder hashes finds them: e.g.
    ``nodes_needed(lambda get: inclusion_proof(5, 100, get))``.
    """
    keys: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        keys.append((level, index))
        return bytes(HASH_SIZE)

    computation(record)
    return list(dict.fromkeys(keys))


# --- verification -------------------------------------------------------------------------


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} has {len(value)} bytes, want {HASH_SIZE}")


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """(inner, border) lengths of the path for index in size: where it meets the right border."""
    inner = (index ^ (size - 1)).bit_length()
    return inner, (index >> inner).bit_count()


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: list[bytes], root: bytes
) -> None:
    """Check an RFC 9162 §2.1.3.2 inclusion proof; raise ProofError if it fails."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not inside a tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    inner, border = _inclusion_shape(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, want {inner + border}")
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    # The parameter shadows leaf_hash() on purpose: callers pass hashes, never leaf data.
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # On the right border a missing right sibling lifts the node without hashing.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    """Check an RFC 9162 §2.1.4.2 consistency proof; raise ProofError if it fails."""
    if old_size < 0 or old_size > new_size:
        raise ProofError(f"old size {old_size} is not between 0 and new size {new_size}")
    if old_size == 0:
        # As transparency-dev's vectors do: a proof from the empty tree proves nothing.
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        if proof:
            raise ProofError("equal sizes need an empty consistency proof")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    if not proof:
        raise ProofError("empty consistency proof for different sizes")
    inner, border = _inclusion_shape(old_size - 1, new_size)
    shift = (old_size & -old_size).bit_length() - 1
    inner -= shift
    # An old tree that is one perfect subtree is its own first hash, so the proof omits it.
    seeded = old_size == 1 << shift
    want = (0 if seeded else 1) + inner + border
    if len(proof) != want:
        raise ProofError(f"consistency proof has {len(proof)} hashes, want {want}")
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    path = [old_root, *proof] if seeded else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the old root (size {old_size})")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the new root (size {new_size})")


# --- streaming ------------------------------------------------------------------------------


class IncrementalTree:
    """A compact range over leaves [0, size): appends and roots in O(log n) memory and time."""

    def __init__(self) -> None:
        # (level, hash) of the perfect subtrees covering [0, size), largest (leftmost) first.
        self._frontier: list[tuple[int, bytes]] = []
        self._size = 0

    @classmethod
    def resume(cls, size: int, get: Getter) -> IncrementalTree:
        """A tree of the first ``size`` leaves, built from popcount(size) stored nodes."""
        tree = cls()
        start = 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                tree._frontier.append((level, get(level, start >> level)))
                start += 1 << level
        tree._size = size
        return tree

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf hash; return the (level, index, hash) perfect subtrees it completes."""
        _check_hash("leaf hash", leaf)
        self._frontier.append((0, leaf))
        self._size += 1
        completed: list[tuple[int, int, bytes]] = []
        while len(self._frontier) >= 2 and self._frontier[-2][0] == self._frontier[-1][0]:
            (level, left), (_, right) = self._frontier[-2], self._frontier[-1]
            merged = node_hash(left, right)
            self._frontier[-2:] = [(level + 1, merged)]
            completed.append((level + 1, (self._size >> (level + 1)) - 1, merged))
        return completed

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append many leaf hashes at once: the same tree as ``append`` one by one, cheaper.

        Hashes level by level: at each level the new nodes are paired off in one pass (the
        frontier's node at that level, if any, is the left neighbour of the first of them);
        an odd one out joins the frontier. No completed nodes are returned.
        """
        for leaf in leaves:
            if len(leaf) != HASH_SIZE:
                _check_hash("leaf hash", leaf)
        if not leaves:
            return
        sha = _sha256
        frontier = self._frontier
        self._size += len(leaves)
        current = list(leaves)
        level = 0
        rest: list[tuple[int, bytes]] = []  # new frontier nodes, lowest level first
        while current:
            if frontier and frontier[-1][0] == level:
                current.insert(0, frontier.pop()[1])
            if len(current) & 1:
                rest.append((level, current.pop()))
            current = [sha(b"\x01" + left + right).digest()
                       for left, right in zip(current[::2], current[1::2], strict=True)]
            level += 1
        frontier.extend(reversed(rest))

    def root(self) -> bytes:
        """The root hash of the leaves appended so far."""
        if not self._frontier:
            return EMPTY_ROOT
        # MTH splits at the largest power of two, so the frontier folds from the right.
        result = self._frontier[-1][1]
        for _, h in reversed(self._frontier[:-1]):
            result = node_hash(h, result)
        return result
