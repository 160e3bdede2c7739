"""Signed bundles: ed25519 over manifest.json, checked against a folder of trusted keys with
rotation and revocation; unsigned or tampered bundles are refused where the device demands it."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from edge.bundle import MANIFEST, Bundle
from edge.cli import main
from edge.errors import BundleError
from edge.bundle.store import BundleStore
from edge.profiles import SecuritySettings, load_profile
from edge.bundle.signing import REVOKED, SIGNATURE, TrustedKeys, load_public_key, verify_signature
from edge.bundle.archive import pack_archive
from export.signing import GeneratedKey, generate_key, sign_bundle


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, GeneratedKey]:
    """Key pairs ``old`` and ``new`` (the publisher's, before and after rotation) and ``stranger``."""
    root = tmp_path_factory.mktemp("keys")
    return {name: generate_key(root / name) for name in ("old", "new", "stranger")}


def _copy(device_bundle, dst: Path, created_at: str = "2030-01-01T00:00:00+00:00") -> Path:
    """A private copy of the tiny bundle (distinct ``created_at``, so a distinct store id)."""
    shutil.copytree(device_bundle.bundle, dst)
    m = json.loads((dst / MANIFEST).read_text())
    m["created_at"] = created_at
    (dst / MANIFEST).write_text(json.dumps(m, indent=2))
    return dst


def _trust(folder: Path, *pubs: GeneratedKey, revoked: str = "") -> TrustedKeys:
    folder.mkdir(parents=True, exist_ok=True)
    for k in pubs:
        shutil.copy(k.public_path, folder / k.public_path.name)
    if revoked:
        (folder / REVOKED).write_text(revoked)
    return TrustedKeys.from_dir(folder)


def test_sign_then_verify_round_trip_names_the_key(device_bundle, keys, tmp_path):
    b = _copy(device_bundle, tmp_path / "b")
    kid = sign_bundle(b, keys["old"].private_path)
    assert kid == keys["old"].key_id
    doc = json.loads((b / SIGNATURE).read_text())
    assert doc["format"] == "edgerec-signature" and doc["version"] == 1 and doc["key_id"] == kid
    assert len(base64.b64decode(doc["signature"])) == 64
    raw = load_public_key(keys["old"].public_path)[0].public_bytes_raw()
    assert kid == hashlib.sha256(raw).hexdigest()[:16]
    trusted = _trust(tmp_path / "trust", keys["old"])
    assert verify_signature(b, trusted) == kid
    assert len(Bundle.open(b, trusted_keys=trusted, require_signature=True).items) > 0


def test_private_key_is_owner_only_and_never_overwritten(keys):
    assert stat.S_IMODE(keys["old"].private_path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        generate_key(keys["old"].private_path)


def test_one_changed_byte_in_the_manifest_is_refused(device_bundle, keys, tmp_path):
    b = _copy(device_bundle, tmp_path / "b")
    sign_bundle(b, keys["old"].private_path)
    data = bytearray((b / MANIFEST).read_bytes())
    i = data.index(b"2030")
    data[i + 3] = ord("1")  # created_at 2031: still valid JSON, every file hash still right
    (b / MANIFEST).write_bytes(bytes(data))
    trusted = _trust(tmp_path / "trust", keys["old"])
    with pytest.raises(BundleError, match="bad signature .*altered after signing"):
        Bundle.open(b, trusted_keys=trusted)
    Bundle.open(b)  # without keys the hashes alone still pass: only the signature catches this


def test_bundle_signed_by_an_untrusted_key_is_refused(device_bundle, keys, tmp_path):
    b = _copy(device_bundle, tmp_path / "b")
    sign_bundle(b, keys["stranger"].private_path)
    trusted = _trust(tmp_path / "trust", keys["old"], keys["new"])
    with pytest.raises(BundleError, match=f"unknown key {keys['stranger'].key_id}"):
        verify_signature(b, trusted)


@pytest.mark.parametrize("by", ["key id", "file name"])
def test_bundle_signed_by_a_revoked_key_is_refused(by, device_bundle, keys, tmp_path):
    b = _copy(device_bundle, tmp_path / "b")
    sign_bundle(b, keys["old"].private_path)
    entry = keys["old"].key_id if by == "key id" else "old.pub"
    trusted = _trust(tmp_path / "trust", keys["old"], keys["new"], revoked=f"# retired 2026-11\n{entry}\n")
    with pytest.raises(BundleError, match=f"revoked key {keys['old'].key_id}"):
        Bundle.open(b, trusted_keys=trusted, require_signature=True)


def test_key_rotation_accepts_both_keys_until_the_old_one_is_revoked(device_bundle, keys, tmp_path):
    old = _copy(device_bundle, tmp_path / "old")
    new = _copy(device_bundle, tmp_path / "new")
    sign_bundle(old, keys["old"].private_path)
    sign_bundle(new, keys["new"].private_path)
    folder = tmp_path / "trust"
    both = _trust(folder, keys["old"], keys["new"])
    assert verify_signature(old, both) == keys["old"].key_id
    assert verify_signature(new, both) == keys["new"].key_id
    (folder / REVOKED).write_text(keys["old"].key_id + "\n")
    retired = TrustedKeys.from_dir(folder)
    assert retired.usable() == [keys["new"].key_id]
    with pytest.raises(BundleError, match="revoked"):
        verify_signature(old, retired)
    assert verify_signature(new, retired) == keys["new"].key_id


def test_unsigned_bundle_passes_unless_a_signature_is_required(device_bundle, keys, tmp_path):
    b = _copy(device_bundle, tmp_path / "b")
    trusted = _trust(tmp_path / "trust", keys["old"])
    Bundle.open(b)
    Bundle.open(b, trusted_keys=trusted)
    assert verify_signature(b, trusted, required=False) is None
    with pytest.raises(BundleError, match="unsigned bundle refused"):
        Bundle.open(b, trusted_keys=trusted, require_signature=True)
    with pytest.raises(BundleError, match="unsigned bundle refused"):
        Bundle.open(b, require_signature=True)


def test_store_demanding_signatures_refuses_an_unsigned_install_and_keeps_the_active_bundle(device_bundle, keys, tmp_path):
    signed = _copy(device_bundle, tmp_path / "a", "2030-01-01T00:00:00+00:00")
    sign_bundle(signed, keys["old"].private_path)
    unsigned = _copy(device_bundle, tmp_path / "b", "2030-01-02T00:00:00+00:00")
    store = BundleStore(tmp_path / "store", trusted_keys=_trust(tmp_path / "trust", keys["old"]), require_signature=True)
    active = store.install(pack_archive(signed))
    for source in (unsigned, pack_archive(unsigned)):
        with pytest.raises(BundleError, match=f"not installed: .*unsigned bundle refused.*{active.id} is unchanged"):
            store.install(source)
    assert store.current() == active.path and [e.id for e in store.history()] == [active.id]
    assert sorted(p.name for p in store.bundles_dir.iterdir()) == [active.id]  # no staging left behind


def test_archive_and_folder_installs_carry_the_signature(device_bundle, keys, tmp_path):
    b = _copy(device_bundle, tmp_path / "b")
    sign_bundle(b, keys["new"].private_path)
    with tarfile.open(pack_archive(b)) as tar:
        assert tar.getnames()[:2] == [MANIFEST, SIGNATURE]
    trusted = _trust(tmp_path / "trust", keys["new"])
    for i, source in enumerate((b.with_name("b.tar"), b)):
        store = BundleStore(tmp_path / f"store{i}", trusted_keys=trusted, require_signature=True)
        entry = store.install(source)
        assert (entry.path / SIGNATURE).read_bytes() == (b / SIGNATURE).read_bytes()
        assert store.open_active().root == entry.path


def test_oversized_signature_member_in_an_archive_is_refused(device_bundle, keys, tmp_path):
    b = _copy(device_bundle, tmp_path / "b")
    (b / SIGNATURE).write_text(" " * 5000)
    with pytest.raises(BundleError, match="manifest.sig.* over the 4096 byte limit"):
        BundleStore(tmp_path / "store").install(pack_archive(b))


def test_recommender_refuses_an_unsigned_bundle_when_the_profile_demands_signatures(device_bundle, keys, tmp_path):
    from edge.recommender import Recommender

    unsigned = _copy(device_bundle, tmp_path / "u")
    signed = _copy(device_bundle, tmp_path / "s")
    sign_bundle(signed, keys["old"].private_path)
    _trust(tmp_path / "trust", keys["old"])
    prof = dataclasses.replace(load_profile("x86-dev"), security=SecuritySettings(True, tmp_path / "trust"))
    with pytest.raises(BundleError, match="unsigned bundle refused"):
        Recommender.open(unsigned, tmp_path / "h.db", device_profile=prof)
    assert not (tmp_path / "h.db").exists()  # refused before the history is touched
    with Recommender.open(signed, tmp_path / "h.db", device_profile=prof) as rec:
        assert len(rec.bundle.items) > 0
    with Recommender.open(unsigned, tmp_path / "h.db", device_profile=load_profile("x86-dev")):
        pass  # x86-dev does not demand signatures


@pytest.mark.parametrize(
    "content, words",
    [
        (b"not json", "not JSON"),
        (b"[" * 2000 + b"]" * 2000, "not JSON"),  # nesting deeper than the parser's recursion limit
        (b"\xff\xfe{}", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (json.dumps({"format": "other", "version": 1}).encode(), "format 'other'"),
        (json.dumps({"format": "edgerec-signature", "version": 1, "key_id": "XYZ", "signature": ""}).encode(), "key_id"),
        (json.dumps({"format": "edgerec-signature", "version": 1, "key_id": "0" * 16, "signature": "!!"}).encode(), "base64 of 64 bytes"),
        (json.dumps({"format": "edgerec-signature", "version": 1, "key_id": "0" * 16,
                     "signature": base64.b64encode(b"x" * 10).decode()}).encode(), "base64 of 64 bytes"),
    ],
)
def test_malformed_signature_file_is_a_bundle_error(content, words, device_bundle, keys, tmp_path):
    b = _copy(device_bundle, tmp_path / "b")
    (b / SIGNATURE).write_bytes(content)
    trusted = _trust(tmp_path / "trust", keys["old"])
    with pytest.raises(BundleError, match=f"malformed signature.*{words}"):
        Bundle.open(b, trusted_keys=trusted)


def test_trusted_keys_folder_problems_are_bundle_errors(keys, tmp_path):
    with pytest.raises(BundleError, match="trusted keys folder not found"):
        TrustedKeys.from_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"no \*\.pub public keys"):
        TrustedKeys.from_dir(tmp_path / "empty")
    with pytest.raises(BundleError, match="line 2: 'nonsense' is neither a key id"):
        _trust(tmp_path / "t1", keys["old"], revoked="\nnonsense\n")
    (tmp_path / "t2").mkdir()
    (tmp_path / "t2" / "bad.pub").write_text("hello")
    with pytest.raises(BundleError, match="bad.pub: not an ed25519 public key"):
        TrustedKeys.from_dir(tmp_path / "t2")
    # A raw 32-byte key file works as well as PEM.
    raw = load_public_key(keys["new"].public_path)[0].public_bytes_raw()
    (tmp_path / "t3").mkdir()
    (tmp_path / "t3" / "raw.pub").write_bytes(raw)
    assert TrustedKeys.from_dir(tmp_path / "t3").usable() == [keys["new"].key_id]


def test_cli_keygen_sign_verify_install(device_bundle, tmp_path, capsys):
    b = _copy(device_bundle, tmp_path / "b")
    assert main(["pipeline", "keygen", str(tmp_path / "k" / "pub2026")]) == 0
    assert "private:" in capsys.readouterr().out
    trust = tmp_path / "trust"
    trust.mkdir()
    shutil.copy(tmp_path / "k" / "pub2026.pub", trust)
    assert main(["bundle", "verify", str(b), "--trusted-keys", str(trust), "--require-signature"]) == 1
    assert "unsigned bundle refused" in capsys.readouterr().err
    assert main(["pipeline", "sign", str(b), "--key", str(tmp_path / "k" / "pub2026.pem"), "--archive"]) == 0
    assert "archive written to" in capsys.readouterr().out
    assert main(["bundle", "verify", str(b), "--trusted-keys", str(trust), "--require-signature"]) == 0
    assert "signed by trusted key" in capsys.readouterr().out
    store = str(tmp_path / "store")
    assert main(["bundle", "install", str(tmp_path / "b.tar"), "--store", store, "--trusted-keys", str(trust),
                 "--require-signature"]) == 0
    # tv-a55 demands signatures from /etc/edgerec/trusted-keys, which this host lacks: refused, clearly.
    assert main(["bundle", "install", str(b), "--store", store, "--device-profile", "tv-a55"]) == 1
    assert "trusted keys folder not found" in capsys.readouterr().err
