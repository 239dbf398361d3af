#!/usr/bin/env python3
"""Standalone auditor's verifier of an Allegation Tracker's signed, append-only audit log.

Needs only the Python standard library, plus the `cryptography` package for the Ed25519
signature check. It talks to the tracker's HTTP API alone and trusts nothing the server
says that it can check itself: it verifies the signed tree head, proves with RFC 9162
consistency proofs that the log extends every head kept before (no fork, no truncation),
can download the whole log and recompute every leaf and the root, and can check that given
events are included. Hand this one file to an auditor; it does not import the tracker.
Python 3.10 or later. Run it with --help for the options and exit statuses.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import http.client
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
HASH_SIZE = 32
PAGE_LIMIT = 200
EMPTY_ROOT = hashlib.sha256(b"").digest()


class VerificationError(Exception):
    """The log, a head or a proof failed verification (exit status 1)."""

    def __init__(self, reason: str, position: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position

    def __str__(self) -> str:
        where = f"position {self.position}: " if self.position is not None else ""
        return where + self.reason


class UsageError(Exception):
    """Verification could not be carried out: bad arguments, network or server trouble (2)."""


# --- RFC 9162 hashing, copied from tracker/audit/merkle.py so this file stands alone -------


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def b64(data: bytes) -> str:
    """Standard padded base64."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, what: str, size: int | None = HASH_SIZE) -> bytes:
    """Decode canonical standard base64 of `size` bytes, or fail verification naming `what`."""
    if not isinstance(text, str):
        raise VerificationError(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not valid base64") from None
    if b64(raw) != text:
        raise VerificationError(f"{what} is not canonical base64")
    if size is not None and len(raw) != size:
        raise VerificationError(f"{what} has {len(raw)} bytes, want {size}")
    return raw


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    inner = (index ^ (size - 1)).bit_length()
    return inner, (index >> inner).bit_count()


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: raise VerificationError unless `proof` puts `leaf` at `index`."""
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is not inside a tree of size {size}")
    inner, border = _inclusion_shape(index, size)
    if len(proof) != inner + border or len(leaf) != HASH_SIZE:
        raise VerificationError(f"inclusion proof has {len(proof)} hashes, want {inner + border}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise VerificationError(f"inclusion proof for leaf {index} does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise VerificationError unless the new tree extends the old."""
    if not 0 < old_size <= new_size:
        raise VerificationError(f"no consistency proof exists from size {old_size} to {new_size}")
    if old_size == new_size:
        if proof or old_root != new_root:
            raise VerificationError(f"two different trees of the same size {old_size}")
        return
    inner, border = _inclusion_shape(old_size - 1, new_size)
    shift = (old_size & -old_size).bit_length() - 1
    inner -= shift
    seeded = old_size == 1 << shift
    want = (0 if seeded else 1) + inner + border
    if len(proof) != want:
        raise VerificationError(f"consistency proof has {len(proof)} hashes, want {want}")
    path = [old_root, *proof] if seeded else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise VerificationError(
            f"the tree of size {new_size} does not extend the tree of size {old_size}"
        )


class IncrementalTree:
    """The perfect subtrees covering the leaves so far: the root of every prefix, in O(log n)."""

    def __init__(self) -> None:
        self._frontier: list[tuple[int, bytes]] = []
        self.size = 0

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash."""
        self._frontier.append((0, leaf))
        self.size += 1
        while len(self._frontier) >= 2 and self._frontier[-2][0] == self._frontier[-1][0]:
            (level, left), (_, right) = self._frontier[-2:]
            self._frontier[-2:] = [(level + 1, node_hash(left, right))]

    def root(self) -> bytes:
        """The root hash of the leaves so far."""
        if not self._frontier:
            return EMPTY_ROOT
        result = self._frontier[-1][1]
        for _, h in reversed(self._frontier[:-1]):
            result = node_hash(h, result)
        return result


# --- leaves and checkpoints ------------------------------------------------------------


def _field(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = obj.get(name)
    # bool is an int in Python; a JSON true must not pass for a position.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise VerificationError(f"{where}: field {name!r} is missing or not a {kind.__name__}")
    return value


def canonical_leaf_bytes(entry: dict[str, Any]) -> bytes:
    """The bytes a log entry's leaf commits to: its position, identity, type, time and payload."""
    where = f"log entry {entry.get('position')!r}"
    values = [
        _field(entry, "position", int, where),
        _field(entry, "allegation_id", str, where),
        _field(entry, "version", int, where),
        _field(entry, "topic", str, where),
        _field(entry, "recorded_at", str, where),
        _field(entry, "payload_sha256", str, where),
    ]
    unb64(values[5], f"{where}: payload_sha256")
    return json.dumps(values, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def entry_leaf_hash(entry: dict[str, Any]) -> bytes:
    """The leaf hash recomputed from an entry's canonical fields."""
    return leaf_hash(canonical_leaf_bytes(entry))


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head."""

    origin: str
    tree_size: int
    root_hash: bytes
    timestamp: str
    signature: bytes
    key_id: str
    source: str = "checkpoint"

    def body(self) -> bytes:
        """The exact signed bytes: the C2SP checkpoint body."""
        return checkpoint_body(self.origin, self.tree_size, b64(self.root_hash))

    def to_json(self) -> dict[str, Any]:
        """The checkpoint as the API serves it, fit to be kept and passed back with --head."""
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": b64(self.root_hash),
            "timestamp": self.timestamp,
            "signature": b64(self.signature),
            "key_id": self.key_id,
        }


def checkpoint_body(origin: str, tree_size: int, root_hash_b64: str) -> bytes:
    """`<origin>\\n<tree_size>\\n<root_hash base64>\\n` as UTF-8."""
    return f"{origin}\n{tree_size}\n{root_hash_b64}\n".encode()


def parse_checkpoint(obj: Any, source: str = "checkpoint") -> Checkpoint:
    """A Checkpoint from its JSON form, or VerificationError saying what is malformed."""
    if not isinstance(obj, dict):
        raise VerificationError(f"{source} is not a JSON object")
    origin = _field(obj, "origin", str, source)
    # A newline in the origin would let two different heads share one signed body.
    if not origin or "\n" in origin:
        raise VerificationError(f"{source}: origin is empty or contains a newline")
    tree_size = _field(obj, "tree_size", int, source)
    if tree_size < 0:
        raise VerificationError(f"{source}: negative tree_size")
    return Checkpoint(
        origin=origin,
        tree_size=tree_size,
        root_hash=unb64(obj.get("root_hash"), f"{source}: root_hash"),
        timestamp=_field(obj, "timestamp", str, source),
        signature=unb64(obj.get("signature"), f"{source}: signature", size=64),
        key_id=_field(obj, "key_id", str, source),
        source=source,
    )


@dataclass(frozen=True)
class PublicKey:
    """A raw 32-byte Ed25519 public key and, when known, its key id."""

    raw: bytes
    key_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The key as the API serves it."""
        return {"key_id": self.key_id, "public_key": b64(self.raw)}


def parse_public_key(text: str, source: str) -> PublicKey:
    """A key from the API's JSON `{key_id, public_key}`, a PEM file or bare base64."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        serialization, ed25519 = _crypto()
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError:
            raise UsageError(f"{source} is not a PEM public key") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise UsageError(f"{source} is not an Ed25519 key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey(raw)
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            raise UsageError(f"{source} is not valid JSON") from None
        key_id = obj.get("key_id") if isinstance(obj, dict) else None
        raw = unb64(obj.get("public_key") if isinstance(obj, dict) else None, source)
        return PublicKey(raw, key_id if isinstance(key_id, str) else None)
    return PublicKey(unb64(text, source))


def _crypto() -> tuple[Any, Any]:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise UsageError(
            "the Ed25519 signature check needs the 'cryptography' package: pip install cryptography"
        ) from None
    return serialization, ed25519


def verify_signature(cp: Checkpoint, key: PublicKey) -> None:
    """Raise VerificationError unless `key` signed exactly this checkpoint's body."""
    if key.key_id is not None and cp.key_id != key.key_id:
        raise VerificationError(
            f"{cp.source} is signed by key {cp.key_id!r}, not by the trusted key {key.key_id!r}"
        )
    _, ed25519 = _crypto()
    from cryptography.exceptions import InvalidSignature

    try:
        ed25519.Ed25519PublicKey.from_public_bytes(key.raw).verify(cp.signature, cp.body())
    except InvalidSignature:
        raise VerificationError(f"{cp.source}: the Ed25519 signature does not verify") from None
    if cp.tree_size == 0 and cp.root_hash != EMPTY_ROOT:
        raise VerificationError(f"{cp.source}: an empty tree must have the empty root")


def choose_key(
    server: PublicKey, pinned: PublicKey | None, stored: PublicKey | None, stored_at: str
) -> tuple[PublicKey, str]:
    """The key to trust and how it came to be trusted; refuse a key that changed."""
    if pinned is not None:
        if pinned.raw != server.raw:
            raise VerificationError("the server's public key is not the pinned key")
        if stored is not None and stored.raw != pinned.raw:
            raise VerificationError(
                f"the pinned key differs from the key trusted before ({stored_at}); "
                "if the log's key was rotated, check the new key out of band and delete that file"
            )
        return PublicKey(pinned.raw, pinned.key_id or server.key_id), "pinned"
    if stored is not None:
        if stored.raw != server.raw:
            raise VerificationError(
                f"the server's public key changed since it was first trusted ({stored_at}); "
                "if the log's key was rotated, check the new key out of band and delete that file"
            )
        return PublicKey(stored.raw, stored.key_id or server.key_id), "trusted since first use"
    if stored_at:
        return server, "trusted on first use (pin it with --public-key-file)"
    return server, "as the server presents it: no state dir and no --public-key-file"


def check_head(
    head: Checkpoint, current: Checkpoint, fetch_proof: Callable[[int, int], list[bytes]]
) -> str:
    """Prove the current checkpoint extends a kept head; describe how, or fail naming the fault."""
    if head.origin != current.origin:
        raise VerificationError(
            f"{head.source} is for log {head.origin!r}, the server is log {current.origin!r}"
        )
    if head.tree_size > current.tree_size:
        raise VerificationError(
            f"log truncated: {head.source} has {head.tree_size} entries, the current checkpoint "
            f"only {current.tree_size}",
            position=current.tree_size,
        )
    if head.tree_size == 0:
        return "empty head, extended by any log"
    if head.tree_size == current.tree_size:
        if head.root_hash != current.root_hash:
            raise VerificationError(
                f"fork: {head.source} and the current checkpoint have the same size "
                f"{head.tree_size} but different roots"
            )
        return "same tree"
    proof = fetch_proof(head.tree_size, current.tree_size)
    try:
        verify_consistency(
            head.tree_size, current.tree_size, head.root_hash, current.root_hash, proof
        )
    except VerificationError as exc:
        raise VerificationError(
            f"fork or rewritten history: the log is not an extension of {head.source} "
            f"(size {head.tree_size}): {exc.reason}"
        ) from None
    return f"extended by the current log ({len(proof)}-hash consistency proof)"


# --- streaming the whole log -------------------------------------------------------------


@dataclass
class LogVerifier:
    """Recompute leaves and roots while the log streams by, failing at the first bad entry."""

    tree_size: int
    heads: dict[int, list[Checkpoint]] = field(default_factory=dict)
    previous_leaves: IO[bytes] | None = None
    record_leaves: IO[bytes] | None = None
    tree: IncrementalTree = field(default_factory=IncrementalTree)

    @property
    def count(self) -> int:
        """How many entries have been verified."""
        return self.tree.size

    def feed(self, entry: Any) -> None:
        """Check the next entry and add its leaf."""
        expected = self.count
        if not isinstance(entry, dict):
            raise VerificationError("log entry is not a JSON object", expected)
        position = entry.get("position")
        if not isinstance(position, int) or isinstance(position, bool):
            raise VerificationError("log entry without an integer position", expected)
        if position > expected:
            raise VerificationError(f"missing: the next entry has position {position}", expected)
        if position < expected:
            raise VerificationError(
                f"out of order or repeated: expected position {expected}", position
            )
        leaf = entry_leaf_hash(entry)
        if unb64(entry.get("leaf_hash"), f"position {position}: leaf_hash") != leaf:
            raise VerificationError(
                "altered record: its fields do not hash to its leaf_hash", position
            )
        if self.previous_leaves is not None:
            before = self.previous_leaves.read(HASH_SIZE)
            if len(before) == HASH_SIZE and before != leaf:
                raise VerificationError(
                    "record changed since the last full verification (its leaf differs)", position
                )
        if self.record_leaves is not None:
            self.record_leaves.write(leaf)
        self.tree.append(leaf)
        for head in self.heads.get(self.count, []):
            if self.tree.root() != head.root_hash:
                raise VerificationError(
                    f"the first {self.count} entries do not hash to the root of {head.source}: "
                    f"a record before position {self.count} was altered, inserted or removed"
                )

    def finish(self, checkpoint: Checkpoint) -> bytes:
        """After the last entry: check the log reached the checkpoint and its root matches."""
        if self.count < self.tree_size:
            raise VerificationError(
                f"missing: the log ended after {self.count} entries, the checkpoint "
                f"commits to {self.tree_size}",
                self.count,
            )
        root = self.tree.root()
        if root != checkpoint.root_hash:
            raise VerificationError(
                f"the {self.count} entries do not hash to the signed root: a record was "
                "altered, inserted or removed without its leaf_hash changing"
            )
        return root


# --- the API --------------------------------------------------------------------------------


class Api:
    """The tracker's audit endpoints, with bearer authentication and a few retries."""

    def __init__(self, url: str, token: str, timeout: float = 30.0, retries: int = 3) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"--url must be an http(s) URL such as https://host, got {url!r}")
        self.base = url.rstrip("/").removesuffix("/v1")
        self.token = token
        self.timeout = timeout
        self.retries = retries

    def get(self, path: str, **params: int | str | None) -> Any:
        """GET a JSON document; UsageError when it cannot be had."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.base}{path}" + (f"?{query}" if query else "")
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            url,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "User-Agent": "tracker-verify-log/1",
            },
        )
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    body = response.read()
                break
            except urllib.error.HTTPError as exc:
                retryable = exc.code == 429 or exc.code >= 500
                if not retryable or attempt == self.retries:
                    raise UsageError(_http_problem(url, exc)) from None
                _sleep_before_retry(attempt, exc.headers.get("Retry-After"))
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                if attempt == self.retries:
                    reason = getattr(exc, "reason", exc)
                    raise UsageError(
                        f"cannot reach {url}: {reason}; check --url and that the tracker is up"
                    ) from None
                _sleep_before_retry(attempt, None)
        try:
            return json.loads(body)
        except ValueError:
            raise UsageError(
                f"{url} did not answer JSON; is --url the tracker's base URL?"
            ) from None

    def public_key(self) -> PublicKey:
        """GET /v1/audit/public-key."""
        obj = self.get("/v1/audit/public-key")
        if not isinstance(obj, dict) or not isinstance(obj.get("key_id"), str):
            raise VerificationError("the public-key answer has no key_id")
        return PublicKey(unb64(obj.get("public_key"), "the server's public key"), obj["key_id"])

    def checkpoint(self) -> Checkpoint:
        """GET /v1/audit/checkpoint."""
        return parse_checkpoint(self.get("/v1/audit/checkpoint"), "the current checkpoint")

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """GET /v1/audit/proof/consistency."""
        obj = self.get("/v1/audit/proof/consistency", **{"from": old_size, "to": new_size})
        if not isinstance(obj, dict) or (obj.get("from"), obj.get("to")) != (old_size, new_size):
            raise VerificationError(f"the consistency proof {old_size}->{new_size} is malformed")
        return _hash_list(obj.get("consistency"), "consistency proof")

    def inclusion(self, position: int, tree_size: int) -> tuple[bytes, list[bytes]]:
        """GET /v1/audit/proof/inclusion: the leaf hash it claims and the audit path."""
        obj = self.get("/v1/audit/proof/inclusion", position=position, tree_size=tree_size)
        if not isinstance(obj, dict) or (obj.get("position"), obj.get("tree_size")) != (
            position,
            tree_size,
        ):
            raise VerificationError("the inclusion proof is malformed", position)
        leaf = unb64(obj.get("leaf_hash"), f"position {position}: proof's leaf_hash")
        return leaf, _hash_list(obj.get("audit_path"), f"position {position}: audit path")

    def log_pages(self, after: int | None, limit: int = PAGE_LIMIT) -> Iterator[list[Any]]:
        """Pages of entries with positions > after (all from 0 when after is None)."""
        while True:
            obj = self.get("/v1/audit/log", after=after, limit=limit)
            if not isinstance(obj, dict) or not isinstance(obj.get("entries"), list):
                raise VerificationError("a log page has no entries list")
            entries, next_after = obj["entries"], obj.get("next_after")
            yield entries
            if not entries or next_after is None:
                return
            if not isinstance(next_after, int) or (after is not None and next_after <= after):
                raise UsageError(f"the server's paging does not advance (next_after {next_after})")
            after = next_after


def _hash_list(value: Any, what: str) -> list[bytes]:
    if not isinstance(value, list):
        raise VerificationError(f"{what} is not a list")
    return [unb64(h, f"{what}[{i}]") for i, h in enumerate(value)]


def _http_problem(url: str, exc: urllib.error.HTTPError) -> str:
    detail = ""
    try:
        problem = json.loads(exc.read())
        if isinstance(problem, dict):
            detail = str(problem.get("detail") or problem.get("title") or "")
    except (ValueError, OSError):
        pass
    hint = {
        401: "the token was refused: check --token or TRACKER_TOKEN",
        403: "the token's user may not read the audit log: use an auditor's or admin's token",
        404: "not found: is --url the tracker's base URL?",
    }.get(exc.code, "the server refused the request")
    return f"{url}: HTTP {exc.code}{f' ({detail})' if detail else ''}: {hint}"


def _sleep_before_retry(attempt: int, retry_after: str | None) -> None:
    delay = float(2**attempt)
    if retry_after and retry_after.isdigit():
        delay = min(float(retry_after), 60.0)
    time.sleep(delay)


# --- progress, state and the run --------------------------------------------------------


class Progress:
    """A throttled `entries/s` line on stderr for long downloads."""

    def __init__(self, total: int, stream: TextIO, enabled: bool = True) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled
        self.start = self.last = time.monotonic()
        self.tty = stream.isatty()

    def update(self, done: int, final: bool = False) -> None:
        """Report `done` entries, at most once a second on a terminal, every 10 s otherwise."""
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < (1 if self.tty else 10)):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        line = f"verified {done:,} / {self.total:,} entries ({rate:,.0f} entries/s)"
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()


class State:
    """What this auditor has verified before: the trusted key, the last head, its leaves."""

    def __init__(self, directory: Path | None) -> None:
        self.dir = directory
        self._staged: str | None = None

    def _path(self, name: str) -> Path | None:
        return self.dir / name if self.dir else None

    @property
    def key_path(self) -> str:
        """Where the trusted key is kept ("" without a state dir), for messages."""
        path = self._path("public_key.json")
        return str(path) if path else ""

    def load_key(self) -> PublicKey | None:
        """The key trusted on first use, if any."""
        path = self._path("public_key.json")
        if path is None or not path.exists():
            return None
        return parse_public_key(path.read_text(), str(path))

    def load_head(self) -> Checkpoint | None:
        """The last head verified from this state dir."""
        path = self._path("head.json")
        if path is None or not path.exists():
            return None
        return _load_head(path, f"the last verified head ({path})")

    def leaves_reader(self) -> IO[bytes] | None:
        """The leaf hashes recorded by the last full verification, if any."""
        path = self._path("leaves.bin")
        return path.open("rb") if path is not None and path.exists() else None

    def new_leaves_file(self) -> IO[bytes] | None:
        """A temporary file to record this run's leaves in; `stage_leaves` it when verified."""
        if self.dir is None:
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        return tempfile.NamedTemporaryFile(dir=self.dir, prefix=".leaves.", delete=False)

    def stage_leaves(self, recorded: IO[bytes]) -> None:
        """Hold verified leaves until the whole run succeeds (`commit`) or fails (`discard`)."""
        recorded.close()
        self._staged = recorded.name

    def commit(self, key: PublicKey, head: Checkpoint) -> None:
        """Remember what this run verified: the key (first use), the head and staged leaves."""
        if self.dir is None:
            return
        if self.load_key() is None:
            self._save("public_key.json", json.dumps(key.to_json(), indent=2).encode())
        self._save("head.json", json.dumps(head.to_json(), indent=2).encode())
        if self._staged:
            os.replace(self._staged, self.dir / "leaves.bin")
            self._staged = None

    def discard(self) -> None:
        """Drop staged leaves: a failed run must not replace the reference of the last good one."""
        if self._staged:
            os.unlink(self._staged)
            self._staged = None

    def _save(self, name: str, data: bytes) -> None:
        # Replace atomically, so a crash leaves the old file or the new one.
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, self.dir / name)


def _load_head(path: Path, source: str) -> Checkpoint:
    # A file that is not a head at all is a usage error; a head that fails checks is not.
    try:
        return parse_checkpoint(_read_json(path), source)
    except VerificationError as exc:
        raise UsageError(
            f"{path} is not a signed head as /v1/audit/checkpoint serves it: {exc}"
        ) from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise UsageError(f"{path} is not JSON") from None


def default_state_dir(url: str) -> Path:
    """~/.local/state/tracker-verify-log/<host>: one directory per log audited."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", urllib.parse.urlsplit(url).netloc) or "default"
    return Path(base) / "tracker-verify-log" / host


def verify_full_log(
    api: Api,
    checkpoint: Checkpoint,
    heads: Iterable[Checkpoint],
    state: State,
    progress: Progress,
) -> int:
    """Download the log up to the checkpoint, recompute every leaf and root; the entry count."""
    by_size: dict[int, list[Checkpoint]] = {}
    for head in heads:
        by_size.setdefault(head.tree_size, []).append(head)
    previous = state.leaves_reader()
    recorded = state.new_leaves_file()
    verifier = LogVerifier(checkpoint.tree_size, by_size, previous, recorded)
    try:
        if checkpoint.tree_size:
            for page in api.log_pages(after=None):
                for entry in page:
                    if verifier.count == checkpoint.tree_size:
                        break
                    verifier.feed(entry)
                progress.update(verifier.count)
                if verifier.count == checkpoint.tree_size:
                    break
        verifier.finish(checkpoint)
        progress.update(verifier.count, final=True)
        if recorded is not None:
            state.stage_leaves(recorded)
            recorded = None
    finally:
        if previous is not None:
            previous.close()
        if recorded is not None:
            recorded.close()
            os.unlink(recorded.name)
    return verifier.count


def verify_position(api: Api, position: int, checkpoint: Checkpoint) -> None:
    """Fetch an entry, recompute its leaf, and verify it is in the signed tree."""
    if position >= checkpoint.tree_size:
        raise UsageError(
            f"position {position} is not yet covered by the latest checkpoint (tree_size "
            f"{checkpoint.tree_size}); heads lag the log by up to 10 s: retry shortly"
        )
    page = next(api.log_pages(after=position - 1 if position else None, limit=1))
    if not page or not isinstance(page[0], dict) or page[0].get("position") != position:
        raise VerificationError("the log has no entry at this position", position)
    leaf = entry_leaf_hash(page[0])
    if unb64(page[0].get("leaf_hash"), f"position {position}: leaf_hash") != leaf:
        raise VerificationError("altered record: its fields do not hash to its leaf_hash", position)
    claimed, path = api.inclusion(position, checkpoint.tree_size)
    if claimed != leaf:
        raise VerificationError("the inclusion proof is for another leaf", position)
    try:
        verify_inclusion(position, checkpoint.tree_size, leaf, path, checkpoint.root_hash)
    except VerificationError as exc:
        raise VerificationError(f"not in the signed tree: {exc.reason}", position) from None


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Carry out every check the arguments ask for; the exit status."""
    token = args.token or os.environ.get("TRACKER_TOKEN")
    if not token:
        raise UsageError("no token: pass --token or set TRACKER_TOKEN (an auditor's token)")
    api = Api(args.url, token, timeout=args.timeout)
    state = State(None if args.no_state else Path(args.state_dir or default_state_dir(args.url)))
    try:
        return _verify(args, api, state, out, err)
    finally:
        state.discard()


def _verify(args: argparse.Namespace, api: Api, state: State, out: TextIO, err: TextIO) -> int:
    """The checks in order: key, checkpoint, heads (cheap first), full log, positions."""
    pinned = None
    if args.public_key_file:
        try:
            text = Path(args.public_key_file).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {args.public_key_file}: {exc.strerror}") from None
        pinned = parse_public_key(text, args.public_key_file)
    kept = [_load_head(Path(f), f"kept head {f}") for f in args.head]
    last = state.load_head()
    heads = kept + ([last] if last else [])

    key, how = choose_key(api.public_key(), pinned, state.load_key(), state.key_path)
    checkpoint = api.checkpoint()
    verify_signature(checkpoint, key)
    out.write(f"log        {checkpoint.origin} at {api.base}\n")
    out.write(f"key        {key.key_id or '(no key id)'}: {how}\n")
    out.write(
        f"checkpoint tree_size {checkpoint.tree_size}, root {b64(checkpoint.root_hash)}, "
        f"{checkpoint.timestamp} (time not signed): signature OK\n"
    )
    for head in heads:
        verify_signature(head, key)
        if head.tree_size > checkpoint.tree_size or head.origin != checkpoint.origin:
            check_head(head, checkpoint, api.consistency)  # fails before any download

    if args.full:
        progress = Progress(checkpoint.tree_size, err, enabled=not args.quiet)
        count = verify_full_log(api, checkpoint, heads, state, progress)
        out.write(f"full log   {count} entries re-hashed from their fields: root matches\n")
    for head in heads:
        out.write(
            f"head       {head.source}: size {head.tree_size}, signature OK, "
            f"{check_head(head, checkpoint, api.consistency)}\n"
        )
    for position in args.position:
        verify_position(api, position, checkpoint)
        out.write(f"inclusion  position {position}: in the signed tree\n")

    state.commit(key, checkpoint)
    if args.save_head:
        Path(args.save_head).write_text(json.dumps(checkpoint.to_json(), indent=2) + "\n")
    out.write(
        f"VERIFIED   the log of {checkpoint.tree_size} entries"
        f"{' (head saved in ' + str(state.dir) + ')' if state.dir else ''}\n"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="verify_log.py",
        description=(
            "Verify an Allegation Tracker's audit log through its API: the signed tree head "
            "(Ed25519), that the log extends every head you kept (RFC 9162 consistency proofs: "
            "no fork, no truncation), and optionally every entry (--full) or given entries "
            "(--position)."
        ),
        epilog=(
            "Exit status: 0 everything verified; 1 verification failed (the first bad position "
            "and the reason are printed); 2 bad usage, network or server error. "
            "Example: TRACKER_TOKEN=... verify_log.py --url https://tracker.example --full "
            "--head kept/2024-06-01.json --public-key-file tracker-key.pem"
        ),
    )
    parser.add_argument("--url", required=True, help="the tracker's base URL, e.g. https://host")
    parser.add_argument(
        "--token",
        help="an auditor's bearer token; prefer the TRACKER_TOKEN environment variable, "
        "which other users cannot see in the process list",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where heads, the trusted key and leaf hashes of earlier runs are kept "
        "(default: $XDG_STATE_HOME or ~/.local/state, /tracker-verify-log/<host>)",
    )
    parser.add_argument(
        "--no-state", action="store_true", help="neither read nor write a state directory"
    )
    parser.add_argument(
        "--head",
        action="append",
        default=[],
        metavar="FILE",
        help="a signed head you kept (the JSON of /v1/audit/checkpoint); repeatable",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="download the whole log, recompute every leaf from its fields and the root",
    )
    parser.add_argument(
        "--position",
        action="append",
        default=[],
        type=_position,
        metavar="N",
        help="check that the event at log position N (0-based) is in the tree; repeatable",
    )
    parser.add_argument(
        "--public-key-file",
        metavar="FILE",
        help="the log's Ed25519 public key (PEM, base64 of the raw 32 bytes, or the JSON of "
        "/v1/audit/public-key) obtained out of band; without it the server's key is trusted "
        "on first use and must never change afterwards",
    )
    parser.add_argument("--save-head", metavar="FILE", help="also write the verified head here")
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="per request (default 30)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    return parser


def _position(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a log position is an integer >= 0, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Run the verifier; the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        return run(args, sys.stdout, sys.stderr)
    except VerificationError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"FAILED: {exc}\n")
        return EXIT_FAILED
    except UsageError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing was saved\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
