"""The auditor's standalone verifier (tools/verify_log.py), exercised without a server."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tracker.audit import merkle

ROOT = Path(__file__).resolve().parents[2]


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_log", ROOT / "tools" / "verify_log.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


vl = _load_tool()
ORIGIN = "tracker.test"


class FakeLog:
    """What an honest tracker would serve: entries, tree nodes and signed heads."""

    def __init__(self, n: int, key: Ed25519PrivateKey | None = None, salt: str = "") -> None:
        self.key = key or Ed25519PrivateKey.generate()
        self.entries: list[dict[str, Any]] = []
        self.nodes: dict[tuple[int, int], bytes] = {}
        for _ in range(n):
            self.append(salt)

    def append(self, salt: str = "") -> None:
        p = len(self.entries)
        entry = {
            "position": p,
            "allegation_id": f"alg-{p % 3}",
            "version": p // 3 + 1,
            "topic": "Submitted" if p < 3 else "Commented",
            "recorded_at": f"2025-03-01T12:00:{p % 60:02d}+00:00",
            "payload_sha256": merkle.b64(hashlib.sha256(f"{salt}{p}".encode()).digest()),
            "actor": "user-1",
            "data": {"text": "témoin"},
        }
        leaf = merkle.leaf_hash(vl.canonical_leaf_bytes(entry))
        entry["leaf_hash"] = merkle.b64(leaf)
        self.entries.append(entry)
        self.nodes[(0, p)] = leaf
        for level, index, h in merkle.nodes_completed_by_append(p, self.get, leaf):
            self.nodes[(level, index)] = h

    def get(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    @property
    def public_key(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def checkpoint_json(self, size: int | None = None, key_id: str = "k1") -> dict[str, Any]:
        size = len(self.entries) if size is None else size
        root = merkle.b64(merkle.root(size, self.get))
        body = f"{ORIGIN}\n{size}\n{root}\n".encode()
        return {
            "origin": ORIGIN,
            "tree_size": size,
            "root_hash": root,
            "timestamp": "2025-03-01T12:00:10Z",
            "signature": merkle.b64(self.key.sign(body)),
            "key_id": key_id,
        }

    def checkpoint(self, size: int | None = None, source: str = "checkpoint") -> Any:
        return vl.parse_checkpoint(self.checkpoint_json(size), source)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(old, new, self.get)


class FakeApi(vl.Api):  # type: ignore[misc,name-defined]
    """Stands in for the tracker's HTTP API, answering from a FakeLog."""

    def __init__(self, log: FakeLog) -> None:
        super().__init__("http://tracker.test", "token")
        self.log = log
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def get(self, path: str, **params: Any) -> Any:
        self.requests.append((path, params))
        log = self.log
        if path == "/v1/audit/public-key":
            return {"key_id": "k1", "public_key": merkle.b64(log.public_key)}
        if path == "/v1/audit/checkpoint":
            return log.checkpoint_json()
        if path == "/v1/audit/log":
            after = -1 if params.get("after") is None else params["after"]
            page = [e for e in log.entries if e["position"] > after][: params["limit"]]
            return {"entries": page, "next_after": page[-1]["position"] if page else None}
        if path == "/v1/audit/proof/consistency":
            old, new = params["from"], params["to"]
            proof = [merkle.b64(h) for h in log.consistency(old, new)]
            return {"from": old, "to": new, "consistency": proof}
        if path == "/v1/audit/proof/inclusion":
            p, size = params["position"], params["tree_size"]
            path_ = [merkle.b64(h) for h in merkle.inclusion_proof(p, size, log.get)]
            return {
                "position": p,
                "tree_size": size,
                "leaf_hash": merkle.b64(log.nodes[(0, p)]),
                "audit_path": path_,
            }
        raise AssertionError(f"unexpected request {path}")


def verify_entries(entries: list[Any], checkpoint: Any, **kwargs: Any) -> bytes:
    verifier = vl.LogVerifier(checkpoint.tree_size, **kwargs)
    for entry in entries[: checkpoint.tree_size]:
        verifier.feed(entry)
    root: bytes = verifier.finish(checkpoint)
    return root


# --- leaves -----------------------------------------------------------------------------


def test_canonical_bytes_are_the_six_fields_as_compact_ascii_json() -> None:
    entry = {
        "position": 7,
        "allegation_id": "a-é",
        "version": 2,
        "topic": "StatusChanged",
        "recorded_at": "2025-03-01T12:00:00+00:00",
        "payload_sha256": merkle.b64(bytes(32)),
        "data": {"ignored": True},
        "leaf_hash": "x",
    }
    want = (
        b'[7,"a-\\u00e9",2,"StatusChanged","2025-03-01T12:00:00+00:00",'
        b'"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]'
    )
    assert vl.canonical_leaf_bytes(entry) == want
    assert vl.entry_leaf_hash(entry) == hashlib.sha256(b"\x00" + want).digest()
    assert vl.entry_leaf_hash(entry) == merkle.leaf_hash(want)


@pytest.mark.parametrize(
    "field,value",
    [
        ("position", "7"),
        ("position", True),
        ("version", None),
        ("topic", 3),
        ("payload_sha256", "not base64!"),
        ("payload_sha256", merkle.b64(b"short")),
    ],
)
def test_an_entry_with_a_malformed_field_fails(field: str, value: Any) -> None:
    entry = FakeLog(1).entries[0] | {field: value}
    with pytest.raises(vl.VerificationError, match=field):
        vl.canonical_leaf_bytes(entry)


def test_the_copied_hash_code_agrees_with_the_tracker_on_every_vector() -> None:
    vectors = ROOT / "tests" / "data" / "merkle"
    checked = 0
    for path in sorted(vectors.rglob("*.json")):
        case = json.loads(path.read_text())
        proof = [merkle.unb64(h) for h in case["proof"] or []]
        args: tuple[Any, ...]
        ours: Callable[..., None]
        if "leafIdx" in case:
            args = (
                case["leafIdx"],
                case["treeSize"],
                merkle.unb64(case["leafHash"]),
                proof,
                merkle.unb64(case["root"]),
            )
            tool, ours = vl.verify_inclusion, merkle.verify_inclusion
        else:
            args = (
                case["size1"],
                case["size2"],
                merkle.unb64(case["root1"]),
                merkle.unb64(case["root2"]),
                proof,
            )
            tool, ours = vl.verify_consistency, merkle.verify_consistency
        for verify, error in ((tool, vl.VerificationError), (ours, merkle.ProofError)):
            if case["wantErr"]:
                with pytest.raises(error):
                    verify(*args)
            else:
                verify(*args)
        checked += 1
    assert checked == 196


def test_the_copied_incremental_tree_gives_every_prefix_root() -> None:
    log = FakeLog(70)
    tree = vl.IncrementalTree()
    assert tree.root() == merkle.EMPTY_ROOT
    for p in range(70):
        tree.append(log.nodes[(0, p)])
        assert tree.root() == merkle.root(p + 1, log.get)


# --- signatures and keys ------------------------------------------------------------------


def test_a_checkpoint_signed_by_the_key_verifies() -> None:
    log = FakeLog(5)
    cp = log.checkpoint()
    assert cp.body() == f"{ORIGIN}\n5\n{merkle.b64(merkle.root(5, log.get))}\n".encode()
    vl.verify_signature(cp, vl.PublicKey(log.public_key, "k1"))


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 4},
        {"origin": "other.test"},
        {"root_hash": merkle.b64(bytes(32))},
    ],
)
def test_a_checkpoint_changed_after_signing_fails(change: dict[str, Any]) -> None:
    log = FakeLog(5)
    cp = vl.parse_checkpoint(log.checkpoint_json() | change)
    with pytest.raises(vl.VerificationError, match="signature does not verify"):
        vl.verify_signature(cp, vl.PublicKey(log.public_key, "k1"))


def test_a_checkpoint_signed_by_another_key_or_key_id_fails() -> None:
    log = FakeLog(5)
    other = FakeLog(0).public_key
    with pytest.raises(vl.VerificationError, match="signature"):
        vl.verify_signature(log.checkpoint(), vl.PublicKey(other, "k1"))
    with pytest.raises(vl.VerificationError, match="not by the trusted key"):
        vl.verify_signature(log.checkpoint(), vl.PublicKey(log.public_key, "k2"))


def test_public_keys_are_read_as_json_pem_or_base64() -> None:
    log = FakeLog(0)
    raw = log.public_key
    pem = (
        log.key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    as_json = json.dumps({"key_id": "k1", "public_key": merkle.b64(raw)})
    assert vl.parse_public_key(as_json, "f") == vl.PublicKey(raw, "k1")
    assert vl.parse_public_key(pem, "f") == vl.PublicKey(raw)
    assert vl.parse_public_key(merkle.b64(raw) + "\n", "f") == vl.PublicKey(raw)
    with pytest.raises(vl.VerificationError):
        vl.parse_public_key(merkle.b64(raw[:31]), "f")


def test_the_key_is_trusted_on_first_use_and_refused_when_it_changes() -> None:
    a, b = vl.PublicKey(b"a" * 32, "k1"), vl.PublicKey(b"b" * 32, "k2")
    assert vl.choose_key(a, None, None, "state/public_key.json")[1].startswith("trusted on first")
    assert vl.choose_key(a, None, a, "state/public_key.json")[0] == a
    assert vl.choose_key(a, a, None, "state/public_key.json")[1] == "pinned"
    with pytest.raises(vl.VerificationError, match="changed since it was first trusted"):
        vl.choose_key(b, None, a, "state/public_key.json")
    with pytest.raises(vl.VerificationError, match="not the pinned key"):
        vl.choose_key(b, a, None, "")
    with pytest.raises(vl.VerificationError, match="pinned key differs"):
        vl.choose_key(a, a, b, "state/public_key.json")


# --- kept heads ---------------------------------------------------------------------------


def test_a_kept_head_is_extended_by_the_current_log() -> None:
    log = FakeLog(40)
    head = log.checkpoint(13, "kept head")
    note = vl.check_head(head, log.checkpoint(), log.consistency)
    assert "consistency proof" in note
    assert vl.check_head(log.checkpoint(40), log.checkpoint(), log.consistency) == "same tree"
    assert "empty" in vl.check_head(log.checkpoint(0), log.checkpoint(), log.consistency)


def test_a_forked_head_is_refused() -> None:
    honest = FakeLog(40)
    forked = FakeLog(40, key=honest.key, salt="rewritten")  # one key signed both histories
    for size in (13, 40):
        head = vl.parse_checkpoint(forked.checkpoint_json(size), "kept head")
        with pytest.raises(vl.VerificationError, match="fork"):
            vl.check_head(head, honest.checkpoint(), honest.consistency)


def test_a_truncated_log_is_refused_naming_the_first_missing_position() -> None:
    log = FakeLog(40)
    with pytest.raises(vl.VerificationError, match="truncated") as caught:
        vl.check_head(log.checkpoint(40, "kept head"), log.checkpoint(30), log.consistency)
    assert caught.value.position == 30


def test_a_head_of_another_log_is_refused() -> None:
    log = FakeLog(4)
    head = vl.parse_checkpoint(log.checkpoint_json(2) | {"origin": "elsewhere"}, "kept head")
    with pytest.raises(vl.VerificationError, match="elsewhere"):
        vl.check_head(head, log.checkpoint(), log.consistency)


# --- the full log -------------------------------------------------------------------------


def test_the_whole_log_recomputes_to_the_signed_root() -> None:
    log = FakeLog(300)
    assert verify_entries(log.entries, log.checkpoint()) == merkle.root(300, log.get)


def test_an_altered_entry_is_named() -> None:
    log = FakeLog(50)
    log.entries[17] = log.entries[17] | {"topic": "Submitted", "version": 99}
    with pytest.raises(vl.VerificationError, match="altered record") as caught:
        verify_entries(log.entries, log.checkpoint())
    assert caught.value.position == 17


def test_an_altered_entry_with_a_matching_leaf_hash_fails_against_the_root() -> None:
    log = FakeLog(50)
    altered = log.entries[17] | {"version": 99}
    log.entries[17] = altered | {"leaf_hash": merkle.b64(vl.entry_leaf_hash(altered))}
    with pytest.raises(vl.VerificationError, match="do not hash to the signed root"):
        verify_entries(log.entries, log.checkpoint())
    # An auditor who kept a head before the change learns the bound ...
    with pytest.raises(vl.VerificationError, match="before position 20"):
        verify_entries(log.entries, log.checkpoint(), heads={20: [log.checkpoint(20, "h")]})
    # ... and one who kept the leaves of an earlier full run learns the position.
    previous = io.BytesIO(b"".join(log.nodes[(0, p)] for p in range(50)))
    with pytest.raises(vl.VerificationError, match="changed since") as caught:
        verify_entries(log.entries, log.checkpoint(), previous_leaves=previous)
    assert caught.value.position == 17


@pytest.mark.parametrize("position,message", [(0, "missing"), (23, "missing"), (49, "missing")])
def test_a_missing_position_is_named(position: int, message: str) -> None:
    log = FakeLog(50)
    entries = log.entries[:position] + log.entries[position + 1 :]
    with pytest.raises(vl.VerificationError, match=message) as caught:
        verify_entries(entries, log.checkpoint())
    assert caught.value.position == position


def test_a_repeated_or_reordered_entry_is_named() -> None:
    log = FakeLog(10)
    repeated = [*log.entries[:5], log.entries[4], *log.entries[5:]]
    with pytest.raises(vl.VerificationError, match="out of order") as caught:
        verify_entries(repeated, log.checkpoint())
    assert caught.value.position == 4


def test_entries_are_streamed_in_pages_and_leaves_kept_for_next_time(tmp_path: Path) -> None:
    log = FakeLog(450)
    api, state = FakeApi(log), vl.State(tmp_path)
    progress = vl.Progress(450, io.StringIO(), enabled=False)
    assert vl.verify_full_log(api, log.checkpoint(), [], state, progress) == 450
    pages = [params.get("after") for path, params in api.requests if path == "/v1/audit/log"]
    assert pages == [None, 199, 399]
    assert not (tmp_path / "leaves.bin").exists()  # only once the whole run succeeded
    state.commit(vl.PublicKey(log.public_key, "k1"), log.checkpoint())
    assert (tmp_path / "leaves.bin").read_bytes() == b"".join(log.nodes[(0, p)] for p in range(450))
    assert json.loads((tmp_path / "head.json").read_text()) == log.checkpoint_json()


def test_a_failed_run_keeps_the_leaves_of_the_last_good_one(tmp_path: Path) -> None:
    log = FakeLog(10)
    (tmp_path / "leaves.bin").write_bytes(b"old")
    state = vl.State(tmp_path)
    vl.verify_full_log(FakeApi(log), log.checkpoint(), [], state, vl.Progress(10, io.StringIO()))
    state.discard()
    log.entries[3] = log.entries[3] | {"topic": "Altered"}
    with pytest.raises(vl.VerificationError):
        vl.verify_full_log(
            FakeApi(log), log.checkpoint(), [], state, vl.Progress(10, io.StringIO())
        )
    assert (tmp_path / "leaves.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["leaves.bin"]


def test_a_position_is_proved_included(tmp_path: Path) -> None:
    log = FakeLog(30)
    api = FakeApi(log)
    for position in (0, 17, 29):
        vl.verify_position(api, position, log.checkpoint())
    log.entries[17] = log.entries[17] | {"recorded_at": "2025-03-02T00:00:00+00:00"}
    with pytest.raises(vl.VerificationError, match="altered") as caught:
        vl.verify_position(api, 17, log.checkpoint())
    assert caught.value.position == 17
    with pytest.raises(vl.UsageError, match="not yet covered"):
        vl.verify_position(api, 30, log.checkpoint())


# --- the command ----------------------------------------------------------------------------


def run_tool(monkeypatch: pytest.MonkeyPatch, log: FakeLog, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(vl, "Api", lambda url, token, timeout: FakeApi(log))
    monkeypatch.setenv("TRACKER_TOKEN", "token")
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    code = vl.main(["--url", "http://tracker.test", "--quiet", *argv])
    return code, out.getvalue(), err.getvalue()


def test_the_command_keeps_heads_and_detects_a_rewritten_history(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    state = str(tmp_path / "state")
    log = FakeLog(20)
    code, out, _ = run_tool(monkeypatch, log, "--state-dir", state, "--full", "--position", "3")
    assert code == 0 and "VERIFIED" in out
    kept = json.loads((tmp_path / "state" / "head.json").read_text())
    assert kept == log.checkpoint_json()

    for _ in range(5):
        log.append()
    code, out, _ = run_tool(monkeypatch, log, "--state-dir", state)
    assert code == 0 and "extended by the current log" in out

    rewritten = FakeLog(30, key=log.key, salt="rewritten")
    code, _, err = run_tool(monkeypatch, rewritten, "--state-dir", state)
    assert code == 1 and "fork" in err

    code, _, err = run_tool(monkeypatch, FakeLog(30), "--state-dir", state)
    assert code == 1 and "public key changed" in err


def test_the_command_refuses_a_truncated_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = FakeLog(20)
    head = tmp_path / "head.json"
    head.write_text(json.dumps(log.checkpoint_json()))
    shorter = FakeLog(0, key=log.key)
    shorter.entries, shorter.nodes = log.entries[:15], dict(log.nodes)
    code, _, err = run_tool(monkeypatch, shorter, "--no-state", "--head", str(head))
    assert code == 1 and "position 15: log truncated" in err


def test_the_command_without_a_token_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKER_TOKEN", raising=False)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert vl.main(["--url", "http://tracker.test", "--no-state"]) == 2
    assert "TRACKER_TOKEN" in err.getvalue()
