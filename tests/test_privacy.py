"""The privacy receipt (edge/privacy.py): what is stored per profile, the retention the store
applies, recorded exports and forgets (never a forgotten name), the network statement and
the tests it names, the text for a person and the JSON for apps."""

from __future__ import annotations

import ast
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from edge.errors import HistoryError
from edge.history import EVENT_KINDS, GUEST_PROFILE, Event, HistoryStore
from edge.privacy import IMPORT_TESTS, OFFLINE_TESTS, SERVICE_TESTS, privacy_receipt, render_receipt

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z: fixed, so every receipt below is the same each run
NOW = T0 + 10 * 86400
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path):
    h = HistoryStore(tmp_path / "h.db", synchronous="NORMAL", max_events_per_profile=500, max_age_days=36500)  # 100 years: the fixed 2023 events stay
    h.add_profile("alice")
    h.add_profile("kid", age_limit=7)
    yield h
    h.close()


def by_profile(receipt: dict) -> dict[str, dict]:
    return {p["profile"]: p for p in receipt["profiles"]}


def test_counts_times_and_sizes_match_what_was_recorded(store):
    store.record_many([Event("alice", f"a{n}", "play", T0 + n * 60) for n in range(5)])
    store.record("alice", "a9", "like", T0 + 3600)
    store.record("alice", "a10", "skip", T0 - 7200)
    store.record("kid", "k1", "complete", T0 + 100, 1.0)
    store.add_local_item("L1", [0.5, 0.25], profile="alice")
    store.add_local_item("H1", [1.0, 0.0])
    store.set_setting("lang", "fr", profile="alice")
    store.set_setting("autoplay", "off")

    r = privacy_receipt(store, now=NOW)
    assert r["generated_at"] == NOW and r["database"]["schema_version"] == store.schema_version
    alice, kid = by_profile(r)["alice"], by_profile(r)["kid"]
    assert alice["events"] == 7 == store.count("alice")
    assert alice["events_by_kind"] == {k: {"play": 5, "like": 1, "skip": 1}.get(k, 0) for k in EVENT_KINDS}
    assert (alice["oldest_event"], alice["newest_event"]) == (T0 - 7200, T0 + 3600)
    assert (alice["local_items"], alice["settings"], alice["age_limit"]) == (1, 1, None)
    assert (kid["events"], kid["oldest_event"], kid["newest_event"], kid["age_limit"]) == (1, T0 + 100, T0 + 100, 7)
    guest = by_profile(r)[GUEST_PROFILE]
    assert guest["events"] == 0 and guest["oldest_event"] is None and guest["is_guest"]
    assert r["household"]["shared_local_items"] == 1
    assert alice["approx_bytes"] > kid["approx_bytes"] > guest["approx_bytes"] > 0
    db = r["database"]["bytes"]
    assert db["db"] == store.path.stat().st_size and db["total"] == db["db"] + db["wal"] + db["shm"]
    # The estimate follows the stored payload: one more event with 500 bytes of item id and
    # surface adds those plus its other columns and an aggregate row (tens of bytes).
    store.record("alice", "x" * 250, "play", T0 + 7200, surface="s" * 250)
    grown = by_profile(privacy_receipt(store, now=NOW))["alice"]["approx_bytes"] - alice["approx_bytes"]
    assert 500 < grown < 600


def test_retention_is_what_the_store_applies(store, tmp_path):
    ret = privacy_receipt(store, now=NOW)["retention"]
    assert ret["max_events_per_profile"] == store.max_events_per_profile == 500
    assert ret["max_age_days"] == 36500 and ret["deletes_events_before"] == NOW - 36500 * 86400
    assert ret["secure_delete"] is True
    with HistoryStore(tmp_path / "plain.db", max_events_per_profile=None) as plain:
        ret = privacy_receipt(plain, now=NOW)["retention"]
    assert (ret["max_events_per_profile"], ret["count_slack"], ret["max_age_days"], ret["deletes_events_before"]) == (None, None, None, None)


def test_export_is_recorded_with_its_time_and_path(store, tmp_path):
    store.record("alice", "a1", "play", T0)
    assert by_profile(privacy_receipt(store, now=NOW))["alice"]["last_exported_at"] is None
    out = tmp_path / "alice.json"
    doc = store.export("alice", out)
    r = privacy_receipt(store, now=NOW)
    alice = by_profile(r)["alice"]
    assert alice["last_exported_at"] == doc["exported_at"] and alice["last_export_path"] == str(out.absolute())
    assert alice["settings"] == 0  # the store's own record is shown as the export, not as a setting
    assert r["network"]["exports"] == [{"profile": "alice", "at": doc["exported_at"], "path": str(out.absolute())}]
    assert r["network"]["exports_total"] == 1 and r["network"]["last_export_at"] == doc["exported_at"]
    # An export returned to the app without a file is recorded too, with no path.
    doc2 = store.export("kid")
    r = privacy_receipt(store, now=NOW)
    assert by_profile(r)["kid"]["last_exported_at"] == doc2["exported_at"] and by_profile(r)["kid"]["last_export_path"] is None
    assert r["network"]["exports_total"] == 2 and len(r["network"]["exports"]) == 2
    assert "alice.json" in render_receipt(r)


def test_forget_is_counted_and_leaves_no_trace_of_the_name(tmp_path):
    db = tmp_path / "h.db"
    h = HistoryStore(db, synchronous="NORMAL")
    secret = "alice-7f3a9c"
    h.add_profile(secret)
    h.add_profile("bob")
    h.record_many([Event(secret, f"{secret}-item-{n}", "play", T0 + n, tags=(f"{secret}-tag",)) for n in range(50)])
    h.record("bob", "b1", "play", T0)
    h.add_local_item(f"{secret}-local", np.array([0.5, 0.25], np.float32), profile=secret)
    h.set_setting("lang", f"{secret}-value", profile=secret)
    h.export(secret, tmp_path / f"{secret}-export.json")  # a recorded path that holds the name
    assert privacy_receipt(h, now=NOW)["household"]["forgotten_profiles"] == 0

    h.forget(secret)
    h.forget(GUEST_PROFILE)
    r = privacy_receipt(h, now=NOW)
    assert r["household"]["forgotten_profiles"] == 2 and r["household"]["last_forgotten_at"] is not None
    assert [p["profile"] for p in r["profiles"]] == [GUEST_PROFILE, "bob"]
    assert r["network"]["exports"] == [] and r["network"]["exports_total"] == 1  # counted, not named
    for text in (json.dumps(r), render_receipt(r)):
        assert secret not in text
    with pytest.raises(HistoryError, match="unknown profile"):
        privacy_receipt(h, secret, now=NOW)
    h.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("h.db")]
    assert files
    for path in files:
        assert secret.encode() not in path.read_bytes(), path.name


def test_a_read_only_history_has_a_receipt_and_says_its_exports_are_not_recorded(store, caplog):
    store.record("alice", "a1", "play", T0)
    with HistoryStore(store.path, read_only=True) as ro:
        ro.export("alice")
        r = privacy_receipt(ro, now=NOW)
    assert "not recorded" in caplog.text
    assert r["database"]["read_only"] is True and r["retention"]["secure_delete"] is None
    assert by_profile(r)["alice"]["events"] == 1 and r["network"]["exports_total"] == 0
    assert any("read-only" in line for line in r["network"]["not_known"])


def test_one_profile_and_unknown_profiles(store):
    store.record("kid", "k1", "play", T0)
    r = privacy_receipt(store, "kid", now=NOW)
    assert [p["profile"] for p in r["profiles"]] == ["kid"]
    for bad in ("ghost", "", 7):
        with pytest.raises(HistoryError):
            privacy_receipt(store, bad, now=NOW)
    for bad_now in (float("nan"), float("inf"), "today", True):
        with pytest.raises(HistoryError, match="now="):
            privacy_receipt(store, now=bad_now)


def test_render_mentions_every_profile_in_utc_and_kb(store):
    store.record("alice", "a1", "play", T0)
    store.add_profile("o'brien 🎬")
    r = privacy_receipt(store, now=NOW)
    text = render_receipt(r)
    for p in r["profiles"]:
        assert f"Profile {p['profile']}" in text
    assert "2023-11-14T22:13:20Z" in text and "2023-11-24T22:13:20Z" in text
    assert " KB" in text and "age limit 7" in text and "newest 500 events" in text and "36500 days" in text
    assert render_receipt(r) == text  # a function of the receipt alone
    with pytest.raises(HistoryError, match="not a privacy receipt"):
        render_receipt({"profiles": []})


def test_json_round_trip_without_nan(store, tmp_path):
    store.record("alice", "a1", "rate", T0, 4.5)
    store.export("alice", tmp_path / "x.json")
    r = privacy_receipt(store, now=NOW)
    text = json.dumps(r, allow_nan=False)
    assert json.loads(text) == r
    assert privacy_receipt(store, now=NOW) == r  # same history, same now: same receipt


def test_the_receipt_is_built_offline(store, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the privacy receipt opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert render_receipt(privacy_receipt(store, now=NOW))


#: Standard-library and common third-party modules that open network connections.
NETWORK_MODULES = {"socket", "ssl", "http", "urllib.request", "socketserver", "asyncio", "ftplib", "smtplib", "xmlrpc",
                   "requests", "httpx", "aiohttp", "urllib3", "websocket", "websockets", "grpc"}


def test_only_the_local_service_imports_a_network_module():
    """What the receipt's network section states: outside edge/service (a Unix socket and
    loopback HTTP, checked by tests/test_service.py), no edge module imports one."""
    found = []
    for path in sorted((ROOT / "edge").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for name in names:
                if name in NETWORK_MODULES or name.split(".")[0] in NETWORK_MODULES - {"urllib.request"}:
                    found.append((rel, name))
    assert found and all(rel.startswith("edge/service/") for rel, _ in found), [f for f in found if not f[0].startswith("edge/service/")]


@pytest.mark.parametrize("test_id", OFFLINE_TESTS + IMPORT_TESTS + SERVICE_TESTS)
def test_the_tests_the_network_section_names_exist(test_id):
    """The receipt names tests as its evidence: each must exist, so a rename breaks here."""
    path, name = test_id.split("::")
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, test_id


def test_the_stores_own_records_cannot_be_overwritten_by_an_app(store):
    store.add_profile("alice")
    for key in ("edgerec.exports", "edgerec.forgotten", "edgerec.last_export", "edgerec.anything"):
        with pytest.raises(HistoryError, match="reserved"):
            store.set_setting(key, "{}")
        with pytest.raises(HistoryError, match="reserved"):
            store.set_setting(key, "{}", profile="alice")
    store.set_setting("app.theme", "dark")  # other keys are the app's
