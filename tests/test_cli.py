"""Every command is listed, has its own --help, and errors become one line and exit 1."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from edge.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,), sub
                yield from _commands(sub, prefix + (name,))


def test_top_level_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "edge.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for name in ("demo", "demo-data", "eval", "pipeline", "export", "recommend", "record", "add-item", "add-profile", "profiles",
                 "recent", "block", "blocked", "forget", "health", "bundle", "features", "bench", "package", "serve"):
        assert f"    {name}" in out


@pytest.mark.parametrize("path", [p for p, _ in _commands(build_parser())], ids=" ".join)
def test_each_command_has_help_and_description(path, capsys):
    parser = dict(_commands(build_parser()))[path]
    assert parser.description, f"{' '.join(path)} has no description"
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    assert "usage: edgerec " + " ".join(path) in capsys.readouterr().out


def test_edge_error_becomes_one_line_and_exit_1(tmp_path, capsys):
    assert main(["bundle", "verify", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgerec: error: ") and "not a bundle" in err and err.count("\n") == 1


def test_readme_test_command_is_what_ci_runs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    ci = (root / ".ci" / "run").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash")[1:]]
    assert len(blocks) >= 2 and "edgerec demo" in blocks[0]
    assert blocks[1] in ci.splitlines()


def test_eval_command_prints_table_and_writes_json(tmp_path, capsys):
    import json

    from tests.conftest import make_tiny_catalogue

    inter, items, media = make_tiny_catalogue(tmp_path / "data")
    out = tmp_path / "report.json"
    assert main(["eval", "--interactions", str(inter), "--items", str(items), "--media-root", str(media), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    for name in ("popularity", "markov", "item-knn", "ease", "ndcg@10", "coverage@10", "novelty@10", "validation target"):
        assert name in table
    report = json.loads(out.read_text())
    assert report["target"] == "test" and report["seeds"] == [0]
    models = [r["model"] for r in report["summary"]]
    assert models[:4] == ["popularity", "markov", "item-knn", "ease"]
    assert report["per_seed"][0]["n_test_users"] == 80
    # Every tuned family has exactly one chosen setting, picked on validation NDCG.
    for family in {t["family"] for t in report["tuning"]}:
        rows = [t for t in report["tuning"] if t["family"] == family]
        chosen = [t for t in rows if t["chosen"]]
        assert len(chosen) == 1 and chosen[0]["valid_ndcg@10"] == max(t["valid_ndcg@10"] for t in rows)


def test_eval_command_reports_bad_rows_as_one_line(tmp_path, capsys):
    (tmp_path / "items.csv").write_text("item_id,title\na,A\n")
    (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp,event\nu,a,1700000000,watch\n")
    assert main(["eval", "--interactions", str(tmp_path / "interactions.csv"), "--items", str(tmp_path / "items.csv")]) == 1
    err = capsys.readouterr().err
    assert "line 2, column 'event'" in err and "unknown event kind 'watch'" in err
