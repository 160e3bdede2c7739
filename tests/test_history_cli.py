"""The household commands (``record``, ``add-item``, ``add-profile``, ``profiles``, ``recent``,
``block``, ``blocked``, ``forget``, ``export``, ``health``, ``recommend``) on a real tiny bundle:
each calls the facade method of the same name, errors are one line with exit status 1."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from edge.bundle import Bundle
from edge.cli import main
from edge.history import HistoryStore

NOW = time.time()
LOCAL = "it'em; 🎬"  # a local item id with quotes, a semicolon and an emoji


@pytest.fixture(scope="module")
def bundle(device_bundle):
    return str(device_bundle.bundle)


@pytest.fixture(scope="module")
def item(bundle):
    """A catalogue item with at least one tag, and its tags."""
    b = Bundle.open(bundle)
    it = next(it for it in b.items if it.tags)
    return it.item_id, sorted(it.tags)


def run(bundle, db, *argv) -> int:
    return main([argv[0], "--bundle", bundle, "--db", str(db), *argv[1:]])


def test_record_recent_export_forget_round_trip(bundle, item, tmp_path, capsys):
    db = tmp_path / "h.db"
    item_id, tags = item
    np.save(tmp_path / "frames.npy", np.full((4, 18, 32, 3), 90, np.uint8))
    assert run(bundle, db, "add-profile", "--profile", "alice", "--age-limit", "16") == 0
    assert "age limit 16" in capsys.readouterr().out
    assert run(bundle, db, "record", "--profile", "alice", "--item-id", item_id, "--kind", "complete", "--value", "0.9",
               "--timestamp", str(NOW - 60)) == 0
    assert run(bundle, db, "add-item", str(tmp_path / "frames.npy"), "--title", "Home video", "--tag", "family",
               "--profile", "alice", "--item-id", LOCAL) == 0
    assert f"added {LOCAL} (Home video) for profile 'alice'" in capsys.readouterr().out
    assert run(bundle, db, "record", "--profile", "alice", "--item-id", LOCAL, "--kind", "skip", "--device", "speaker") == 0
    assert f"recorded event 2: alice skip {LOCAL}" in capsys.readouterr().out

    assert run(bundle, db, "profiles") == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and "guest" in listing and "schema version" in listing
    assert run(bundle, db, "profiles", "--json") == 0
    assert {"profile": "alice", "events": 2, "age_limit": 16} in json.loads(capsys.readouterr().out)

    assert run(bundle, db, "recent", "--profile", "alice", "--n", "5") == 0
    text = capsys.readouterr().out
    assert text.index(LOCAL) < text.index(item_id) and "2 of 2 events" in text
    assert "top tags: " + ", ".join(f"{t} 1" for t in tags) in text  # the catalogue's tags, counted by record
    assert run(bundle, db, "recent", "--profile", "alice", "--kind", "complete", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["item_id"] for e in shown] == [item_id] and shown[0]["value"] == 0.9 and sorted(shown[0]["tags"]) == tags

    assert run(bundle, db, "export", "--profile", "alice", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["item_id"] for e in doc["events"]] == [item_id, LOCAL] and [it["item_id"] for it in doc["local_items"]] == [LOCAL]
    out = tmp_path / "alice.json"
    assert run(bundle, db, "export", "--profile", "alice", "--path", str(out)) == 0
    assert f"exported 'alice' to {out}: 2 events, 1 local items" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8"))["events"] == doc["events"]

    assert run(bundle, db, "forget", "--profile", "alice") == 1
    assert "deletes 2 events" in capsys.readouterr().err
    assert run(bundle, db, "forget", "--profile", "alice", "--yes") == 0
    assert "forgot 'alice': 2 events, 1 local items" in capsys.readouterr().out
    with HistoryStore(db) as h:
        assert h.profiles() == ["guest"] and h.local_items() == []


def test_block_blocked_and_recommend(bundle, item, tmp_path, capsys):
    db = tmp_path / "h.db"
    item_id, _ = item
    assert run(bundle, db, "record", "--profile", "bob", "--item-id", item_id, "--kind", "like") == 0
    assert capsys.readouterr().out.startswith("recorded event 1: bob like ")
    assert run(bundle, db, "recommend", "--profile", "bob", "-k", "40", "--json") == 0
    first = json.loads(capsys.readouterr().out)[0]["item_id"]
    assert run(bundle, db, "block", "--profile", "bob", "--item-id", first) == 0
    assert f"blocked {first} for 'bob'; 1 item(s) blocked now" in capsys.readouterr().out
    assert run(bundle, db, "blocked", "--profile", "bob", "--json") == 0
    assert json.loads(capsys.readouterr().out) == [first]
    assert run(bundle, db, "recommend", "--profile", "bob", "--k", "40", "--device", "tv", "--timestamp", str(NOW), "--json") == 0
    assert first not in [r["item_id"] for r in json.loads(capsys.readouterr().out)]
    assert run(bundle, db, "block", "--profile", "bob", "--item-id", first, "--no-blocked") == 0
    assert "unblocked" in capsys.readouterr().out
    assert run(bundle, db, "blocked", "--profile", "bob") == 0
    assert "0 item(s) blocked for 'bob'" in capsys.readouterr().out
    assert run(bundle, db, "recommend", "--profile", "bob", "-k", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[-1].startswith("# 3 items for 'bob'")


def test_health_and_device_profile(bundle, tmp_path, capsys):
    db = tmp_path / "h.db"
    assert run(bundle, db, "health", "--device-profile", "x86-dev", "--json") == 0
    h = json.loads(capsys.readouterr().out)
    assert h["bundle"]["items"] == len(Bundle.open(bundle).items) and h["history"]["path"] == str(db)
    assert run(bundle, db, "health") == 0
    assert "backend  " in capsys.readouterr().out
    assert run(bundle, db, "health", "--device-profile", "no-such-device") == 1
    err = capsys.readouterr().err
    assert err.startswith("edgerec: error: ") and "no-such-device" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, words",
    [
        (["record", "--profile", "p", "--item-id", "{item}", "--timestamp", "100"], "before 2000"),
        (["record", "--profile", "p", "--item-id", "{item}", "--value", "nan"], "value is nan"),
        (["record", "--profile", "p", "--item-id", "not-in-the-catalogue"], "not in the installed bundle's catalogue"),
        (["recent", "--profile", "ghost"], "unknown profile 'ghost'"),
        (["recommend", "--profile", "ghost"], "unknown profile 'ghost'"),
        (["export", "--profile", "ghost"], "unknown profile 'ghost'"),
        (["forget", "--profile", "ghost", "--yes"], "unknown profile 'ghost'"),
        (["add-profile", "--profile", "kid", "--age-limit", "-3"], "age"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(bundle, item, tmp_path, capsys, argv, words):
    argv = [a.replace("{item}", item[0]) for a in argv]
    assert run(bundle, tmp_path / "h.db", *argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgerec: error: ") and words in err and err.count("\n") == 1


def test_a_bad_bundle_is_one_line_and_exit_1(tmp_path, capsys):
    assert main(["recent", "--bundle", str(tmp_path), "--db", str(tmp_path / "h.db"), "--profile", "p"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgerec: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("command", ["recommend", "record", "add-item", "add-profile", "profiles", "recent", "block",
                                     "blocked", "forget", "export", "health"])
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: edgerec {command}" in out and "--db" in out and "--bundle" in out and "--device-profile" in out


@pytest.mark.parametrize("removed", [["history", "show"], ["record", "--item", "x"], ["record", "--at", "1"], ["add-item", "f", "--id", "x"]])
def test_old_names_are_gone(removed, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(removed)
    assert exit_.value.code == 2
