"""One trust policy for every entry point (issue 14 item 2): the device's profile applies to
the facade, the CLI and the service without being named on each call, a store keeps the policy
it was set up with, and a trusted keys folder others can write is refused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from edge.bundle import Bundle
from edge.bundle.signing import SIGNATURE, TrustedKeys
from edge.bundle.store import BundleStore
from edge.cli import main
from edge.errors import BundleError
from edge.profiles import DEVICE_PROFILE_ENV, PROFILE_DIR
from edge.recommender import Recommender


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    from export.signing import generate_key

    root = tmp_path_factory.mktemp("signer")
    key = generate_key(root / "keys" / "publisher")
    trust = root / "trust"
    trust.mkdir()
    shutil.copy(key.public_path, trust / key.public_path.name)
    return key, trust


def _signed(device_bundle, dst: Path, key) -> Path:
    from export.signing import sign_bundle

    shutil.copytree(device_bundle.bundle, dst)
    sign_bundle(dst, key.private_path)
    return dst


def _strict_profile(tmp_path: Path, trust: Path) -> Path:
    text = (PROFILE_DIR / "x86-dev.toml").read_text()
    text = text.replace("require_signature = false", "require_signature = true").replace('trusted_keys_dir = ""', f'trusted_keys_dir = "{trust}"')
    path = tmp_path / "strict.toml"
    path.write_text(text)
    return path


def test_a_store_keeps_requiring_signatures_from_every_entry_point(device_bundle, signer, tmp_path, capsys):
    key, trust = signer
    store = tmp_path / "store"
    BundleStore(store, trusted_keys=TrustedKeys.from_dir(trust), require_signature=True).install(_signed(device_bundle, tmp_path / "s", key))
    # Someone with write access strips the signature of the active bundle.
    (BundleStore(store).current() / SIGNATURE).unlink()
    with pytest.raises(BundleError, match="unsigned bundle refused"):
        Recommender.open(store, tmp_path / "h.db")  # no profile named
    assert main(["recommend", "--bundle", str(store), "--db", str(tmp_path / "h.db"), "--profile", "a"]) == 1
    assert "unsigned bundle refused" in capsys.readouterr().err
    # An install without any trust option still requires a signature.
    with pytest.raises(BundleError, match="unsigned bundle refused"):
        BundleStore(store).install(device_bundle.bundle)


def test_the_device_profile_from_the_environment_applies_without_flags(device_bundle, signer, tmp_path, monkeypatch, capsys):
    key, trust = signer
    monkeypatch.setenv(DEVICE_PROFILE_ENV, str(_strict_profile(tmp_path, trust)))
    db = str(tmp_path / "h.db")
    for argv in (["recommend", "--bundle", str(device_bundle.bundle), "--db", db, "--profile", "a"],
                 ["record", "--bundle", str(device_bundle.bundle), "--db", db, "--profile", "a", "--item-id", "x"]):
        assert main(argv) == 1
        assert "unsigned bundle refused" in capsys.readouterr().err
    signed = _signed(device_bundle, tmp_path / "s", key)
    with Recommender.open(signed, db) as rec:  # the signed bundle opens under the same policy
        assert rec.recommend("guest", k=3)


def test_a_trusted_keys_folder_others_can_write_is_refused(signer, tmp_path):
    _, trust = signer
    folder = tmp_path / "keys"
    shutil.copytree(trust, folder)
    os.chmod(folder, 0o777)
    with pytest.raises(BundleError, match="writable by group or others"):
        TrustedKeys.from_dir(folder)
    os.chmod(folder, 0o755)
    pub = next(folder.glob("*.pub"))
    os.chmod(pub, 0o666)
    with pytest.raises(BundleError, match="chmod go-w"):
        TrustedKeys.from_dir(folder)
    os.chmod(pub, 0o644)
    (folder / "revoked.txt").write_text("")
    os.chmod(folder / "revoked.txt", 0o646)
    with pytest.raises(BundleError, match="revoked.txt"):
        TrustedKeys.from_dir(folder)
    os.chmod(folder / "revoked.txt", 0o644)
    assert TrustedKeys.from_dir(folder).usable()


def test_an_unreadable_store_policy_refuses_rather_than_trusting_anything(device_bundle, signer, tmp_path):
    key, trust = signer
    store = tmp_path / "store"
    BundleStore(store, trusted_keys=TrustedKeys.from_dir(trust), require_signature=True).install(_signed(device_bundle, tmp_path / "s", key))
    (store / "trust.json").write_text("{torn")
    with pytest.raises(BundleError, match="trust policy is unreadable"):
        Recommender.open(store, tmp_path / "h.db")
    assert json.loads((store / "current").read_text())["active"]
