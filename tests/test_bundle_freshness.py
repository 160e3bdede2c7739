"""Signed freshness and one read of the manifest (issue 14 items 1 and 2): a replayed older
bundle and an expired one are refused at install, rollback goes only to a bundle today's keys
and revocations accept, and the bytes whose signature is checked are the bytes parsed."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

import edge.bundle.reader
from edge.bundle import MANIFEST, Bundle
from edge.bundle.freshness import bundle_version, is_expired
from edge.bundle.signing import REVOKED, TrustedKeys
from edge.bundle.store import BundleStore
from edge.cli import main
from edge.errors import BundleError


def _release(device_bundle, dst: Path, version: int, expires: str | None = "2099-01-01T00:00:00+00:00", day: int = 1) -> Path:
    shutil.copytree(device_bundle.bundle, dst)
    m = json.loads((dst / MANIFEST).read_text())
    m.update(created_at=f"2030-01-{day:02d}T00:00:00+00:00", bundle_version=version)
    if expires is None:
        m.pop("expires_at", None)
    else:
        m["expires_at"] = expires
    (dst / MANIFEST).write_text(json.dumps(m, indent=2))
    return dst


def test_the_exporter_writes_a_version_and_an_expiry(device_bundle):
    m = Bundle.open(device_bundle.bundle).manifest
    assert bundle_version(m) > 1_700_000_000 and not is_expired(m)


def test_a_replayed_older_bundle_is_refused_unless_the_operator_allows_it(device_bundle, tmp_path):
    store = BundleStore(tmp_path / "store")
    v2 = store.install(_release(device_bundle, tmp_path / "v2", 2, day=2))
    with pytest.raises(BundleError, match="bundle version 1 is older than version 2") as err:
        store.install(_release(device_bundle, tmp_path / "v1", 1))
    assert "v1" in str(err.value) and store.current().name == v2.id
    assert store.install(tmp_path / "v1", allow_downgrade=True).active
    # The floor followed the explicit downgrade; a newer release installs as usual.
    assert store.install(_release(device_bundle, tmp_path / "v3", 3, day=3)).active


def test_an_expired_bundle_is_refused_naming_the_date(device_bundle, tmp_path):
    store = BundleStore(tmp_path / "store")
    old = _release(device_bundle, tmp_path / "old", 5, expires="2020-06-01T00:00:00+00:00")
    with pytest.raises(BundleError, match="expired on 2020-06-01"):
        store.install(old)
    with pytest.raises(BundleError, match="expired"):
        store.install(old, allow_downgrade=True)
    assert store.history() == []


def test_expiry_is_not_judged_while_the_device_clock_is_unset(device_bundle, tmp_path, monkeypatch):
    old = _release(device_bundle, tmp_path / "old", 5, expires="2020-06-01T00:00:00+00:00")
    monkeypatch.setattr(time, "time", lambda: 1234.0)  # booted without network time
    assert BundleStore(tmp_path / "store").install(old).active


def test_a_bundle_without_freshness_fields_reads_as_version_0(device_bundle, tmp_path):
    legacy = _release(device_bundle, tmp_path / "legacy", 0, expires=None)
    m = json.loads((legacy / MANIFEST).read_text())
    del m["bundle_version"]
    (legacy / MANIFEST).write_text(json.dumps(m))
    store = BundleStore(tmp_path / "store")
    assert store.install(legacy).active
    assert store.install(_release(device_bundle, tmp_path / "v1", 1, day=2)).active


@pytest.mark.parametrize("field,value", [("bundle_version", -1), ("bundle_version", "7"), ("bundle_version", True),
                                         ("expires_at", "soon"), ("expires_at", 20991231)])
def test_malformed_freshness_fields_are_refused(device_bundle, tmp_path, field, value):
    b = _release(device_bundle, tmp_path / "b", 1)
    m = json.loads((b / MANIFEST).read_text())
    m[field] = value
    (b / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(BundleError, match=field):
        Bundle.open(b)


def test_rollback_obeys_todays_revocations(device_bundle, tmp_path):
    from export.signing import generate_key, sign_bundle

    old_key, new_key = generate_key(tmp_path / "k" / "old"), generate_key(tmp_path / "k" / "new")
    trust = tmp_path / "trust"
    trust.mkdir()
    for k in (old_key, new_key):
        shutil.copy(k.public_path, trust / k.public_path.name)
    a = _release(device_bundle, tmp_path / "a", 1)
    b = _release(device_bundle, tmp_path / "b", 2, day=2)
    sign_bundle(a, old_key.private_path)
    sign_bundle(b, new_key.private_path)
    store_dir = tmp_path / "store"
    BundleStore(store_dir, trusted_keys=TrustedKeys.from_dir(trust), require_signature=True).install(a)
    BundleStore(store_dir, trusted_keys=TrustedKeys.from_dir(trust), require_signature=True).install(b)
    (trust / REVOKED).write_text(old_key.key_id + "\n")  # the key that signed a leaked
    args = ["bundle", "rollback", "--store", str(store_dir), "--trusted-keys", str(trust), "--require-signature"]
    assert main(args) == 1  # a's signature is revoked: nothing to roll back to
    assert BundleStore(store_dir).current().name.startswith("20300102")


def test_the_verified_manifest_bytes_are_the_parsed_ones(device_bundle, tmp_path, monkeypatch):
    """An attacker who swaps manifest.json between the signature check and the parse (a
    writable USB stick) gets nothing: the manifest is read once."""
    from export.signing import generate_key, sign_bundle

    key = generate_key(tmp_path / "k" / "pub")
    trust = tmp_path / "trust"
    trust.mkdir()
    shutil.copy(key.public_path, trust / key.public_path.name)
    b = _release(device_bundle, tmp_path / "b", 1)
    sign_bundle(b, key.private_path)
    signed = json.loads((b / MANIFEST).read_text())
    forged = dict(signed, embedding_dim=signed["embedding_dim"], history_len=signed["history_len"] + 1)
    real_verify = edge.bundle.reader.verify_signature

    def verify_then_swap(*args, **kwargs):
        out = real_verify(*args, **kwargs)
        (b / MANIFEST).write_text(json.dumps(forged))
        return out

    monkeypatch.setattr(edge.bundle.reader, "verify_signature", verify_then_swap)
    opened = Bundle.open(b, trusted_keys=TrustedKeys.from_dir(trust), require_signature=True)
    assert opened.manifest["history_len"] == signed["history_len"]
