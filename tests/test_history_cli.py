"""``edgerec history record|show|forget|export``: thin wrappers over the store, each with its
own --help, and errors as one line with exit status 1."""

from __future__ import annotations

import json
import time

import pytest

from edge.cli import main
from edge.history import HistoryStore

NOW = time.time()


def test_record_show_export_forget_round_trip(tmp_path, capsys):
    db = str(tmp_path / "h.db")
    assert main(["history", "record", "--db", db, "--profile", "alice", "--item", "v1", "--kind", "complete", "--value", "0.9", "--tag", "drama", "--tag", "crime", "--at", str(NOW - 60)]) == 0
    assert main(["history", "record", "--db", db, "--profile", "alice", "--item", "it'em; 🎬", "--kind", "skip", "--device", "speaker", "--surface", "home"]) == 0
    assert "recorded event 2: alice skip it'em; 🎬" in capsys.readouterr().out

    assert main(["history", "show", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and "guest" in listing and "schema version 2" in listing

    assert main(["history", "show", "--db", db, "--profile", "alice", "-n", "5"]) == 0
    text = capsys.readouterr().out
    assert text.index("it'em; 🎬") < text.index("v1") and "top tags: crime 1, drama 1" in text and "2 of 2 events" in text

    assert main(["history", "show", "--db", db, "--profile", "alice", "--kind", "complete", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["item_id"] for e in shown["recent"]] == ["v1"] and shown["tag_counts"] == {"crime": 1, "drama": 1}

    assert main(["history", "export", "--db", db, "--profile", "alice"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["item_id"] for e in doc["events"]] == ["v1", "it'em; 🎬"]
    out = tmp_path / "alice.json"
    assert main(["history", "export", "--db", db, "--profile", "alice", "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["events"] == doc["events"]

    assert main(["history", "forget", "--db", db, "--profile", "alice"]) == 1
    assert "deletes 2 events" in capsys.readouterr().err
    assert main(["history", "forget", "--db", db, "--profile", "alice", "--yes"]) == 0
    assert "forgot 'alice': 2 events" in capsys.readouterr().out
    with HistoryStore(db) as h:
        assert h.profiles() == ["guest"]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["record", "--profile", "p", "--item", "i", "--at", "100"], "before 2000"),
        (["record", "--profile", "p", "--item", "i", "--value", "nan"], "value is nan"),
        (["show", "--profile", "ghost"], "unknown profile 'ghost'"),
        (["export", "--profile", "ghost"], "unknown profile 'ghost'"),
        (["forget", "--profile", "ghost", "--yes"], "unknown profile 'ghost'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path, capsys, argv, words):
    assert main(["history", argv[0], "--db", str(tmp_path / "h.db"), *argv[1:]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgerec: error: ") and words in err and err.count("\n") == 1


@pytest.mark.parametrize("action", ["record", "show", "forget", "export"])
def test_each_action_has_help(action, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["history", action, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: edgerec history {action}" in out and "--db" in out
