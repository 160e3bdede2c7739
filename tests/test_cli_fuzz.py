"""Random arguments, files and environments against every ``edgerec`` command that returns on
its own (issue 14 item 9). The only acceptable outcomes are a result (exit 0), argparse's usage
error (exit 2), or one line of ``edgerec: error: ...`` with exit 1 — never an exception escaping
``main`` (a traceback for a shell user). The cases are drawn from a fixed seed, so every run
tries the same ones; ``EDGEREC_CLI_FUZZ_CASES`` runs more.

Left out: ``serve`` (it serves until stopped), ``bench`` and ``package`` (minutes each), and the
training commands that succeed slowly on good data (``demo``, ``eval``, ``pipeline build|train``);
the pipeline stages that need an earlier stage's output are in, on an empty work folder.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from edge.bundle.store import BundleStore
from edge.cli import main

CASES = int(os.environ.get("EDGEREC_CLI_FUZZ_CASES", "240"))

#: command words -> options (name, kind); positional arguments have no leading dashes.
COMMANDS: dict[tuple[str, ...], list[tuple[str, str]]] = {
    ("recommend",): [("--bundle", "path"), ("--db", "db"), ("--profile", "str"), ("--k", "int"), ("--device", "str"), ("--timestamp", "num"), ("--json", "flag")],
    ("record",): [("--bundle", "path"), ("--db", "db"), ("--profile", "str"), ("--item-id", "item"), ("--kind", "str"), ("--timestamp", "num"),
                  ("--value", "num"), ("--device", "str"), ("--client-id", "str")],
    ("add-item",): [("--bundle", "path"), ("--db", "db"), ("source", "media"), ("--title", "str"), ("--tag", "str"), ("--kind", "str"),
                    ("--profile", "str"), ("--item-id", "str")],
    ("add-profile",): [("--bundle", "path"), ("--db", "db"), ("--profile", "str"), ("--age-limit", "int")],
    ("profiles",): [("--bundle", "path"), ("--db", "db"), ("--json", "flag")],
    ("recent",): [("--bundle", "path"), ("--db", "db"), ("--profile", "str"), ("--n", "int"), ("--kind", "str"), ("--json", "flag")],
    ("block",): [("--bundle", "path"), ("--db", "db"), ("--profile", "str"), ("--item-id", "item"), ("--no-blocked", "flag")],
    ("blocked",): [("--bundle", "path"), ("--db", "db"), ("--profile", "str"), ("--json", "flag")],
    ("forget",): [("--bundle", "path"), ("--db", "db"), ("--profile", "str"), ("--yes", "flag")],
    ("export",): [("--bundle", "path"), ("--db", "db"), ("--profile", "str"), ("--path", "out"), ("--json", "flag")],
    ("health",): [("--bundle", "path"), ("--db", "db"), ("--json", "flag")],
    ("bundle", "verify"): [("bundle", "path"), ("--trusted-keys", "path"), ("--require-signature", "flag")],
    ("bundle", "install"): [("source", "path"), ("--store", "store"), ("--keep", "int"), ("--allow-downgrade", "flag"), ("--trusted-keys", "path")],
    ("bundle", "rollback"): [("--store", "store"), ("--trusted-keys", "path")],
    ("bundle", "list"): [("--store", "store")],
    ("features", "audio"): [("paths", "media"), ("--max-read-s", "num"), ("--full-clip", "flag"), ("--json", "flag")],
    ("features", "frames"): [("paths", "media"), ("--json", "flag")],
    ("features", "text"): [("paths", "media"), ("--literal", "flag"), ("--json", "flag")],
    ("pipeline", "distill"): [("--work", "out"), ("--interactions", "path"), ("--items", "path")],
    ("pipeline", "quantize"): [("--work", "out"), ("--interactions", "path"), ("--items", "path")],
    ("pipeline", "bundle"): [("--work", "out"), ("--out", "out"), ("--interactions", "path"), ("--items", "path")],
    ("pipeline", "sign"): [("bundle", "path"), ("--key", "path")],
    ("pipeline", "keygen"): [("out_prefix", "out")],
}

NUMBERS = ["0", "1", "-1", "3", "nan", "inf", "-inf", "1e309", "99999999999999999999", "abc", "", "0.5", "1700000000"]
STRINGS = ["a", "guest", "", "x" * 300, "é🎬", "--", "-", "play", "tv", "speaker", "kid's; DROP TABLE", " "]


def make_pools(bundle: Path, root: Path) -> dict:
    """The files, folders, stores and environments the cases draw from, made under ``root``."""
    garbage = root / "garbage.bin"
    garbage.write_bytes(bytes(random.Random(0).randrange(256) for _ in range(4096)))
    empty = root / "empty"
    empty.write_bytes(b"")
    folder = root / "folder"
    folder.mkdir()
    text = root / "notes.txt"
    text.write_text("a programme guide entry: calm piano for dinner\n")
    csv = root / "bad.csv"
    csv.write_text("user_id,item_id\nu1\n\"unterminated\n")
    store = root / "store"
    BundleStore(store).install(bundle)
    damaged_db = root / "damaged.db"
    con = sqlite3.connect(damaged_db)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    raw = bytearray(damaged_db.read_bytes())
    raw[100:200] = b"\xff" * 100
    damaged_db.write_bytes(bytes(raw))
    return {"root": root, "bundle": bundle, "store": store,
            "path": [str(bundle), str(store), str(folder), str(root / "missing"), str(garbage), str(empty), "/dev/null", str(csv), ""],
            "media": [str(garbage), str(empty), str(folder), str(root / "missing.wav"), str(text), "/dev/null", str(csv)],
            "dbs": [str(damaged_db), str(folder), "/dev/null", str(garbage)],
            "envs": [None, "x86-dev", "no-such-profile", str(garbage), "/dev/null", "tv-a55"]}


@pytest.fixture(scope="module")
def pools(device_bundle, tmp_path_factory):
    return make_pools(device_bundle.bundle, tmp_path_factory.mktemp("cli-fuzz"))


def _value(rng: random.Random, kind: str, pools: dict, case: int) -> str | None:
    root = pools["root"]
    if kind == "flag":
        return None
    if kind in ("int", "num"):
        return rng.choice(NUMBERS)
    if kind == "str":
        return rng.choice(STRINGS)
    if kind == "item":
        return rng.choice(STRINGS + ["i000", "i001", "local:x"])
    if kind == "path":
        return rng.choice(pools["path"])
    if kind == "media":
        return rng.choice(pools["media"])
    if kind == "db":
        return rng.choice(pools["dbs"] + [str(root / f"h{case % 5}.db")] * 4)
    if kind == "store":
        return rng.choice([str(pools["store"]), str(root / f"s{case % 3}"), str(pools["bundle"]), str(root / "garbage.bin")])
    if kind == "out":
        return rng.choice([str(root / f"out{case}"), str(root / "folder"), str(root / "garbage.bin"), "/dev/null/x", str(root / "missing" / "deep")])
    raise AssertionError(kind)


def _case(rng: random.Random, pools: dict, case: int) -> tuple[list[str], str | None]:
    words = rng.choice(sorted(COMMANDS))
    argv = list(words)
    for name, kind in COMMANDS[words]:
        if not name.startswith("-"):
            argv.append(_value(rng, kind, pools, case) if rng.random() < 0.95 else "")
            continue
        if rng.random() < 0.7:
            value = _value(rng, kind, pools, case)
            argv += [name] if value is None else [f"{name}={value}"]
    return argv, rng.choice(pools["envs"])


def fuzz_cli(pools: dict, tally, seed: int = 20261202, cases: int = CASES) -> dict[int, int]:
    """Run ``cases`` random invocations, recording each in ``tally`` (tests/test_fuzz.py's
    Tally) as kind ``cli``; returns the count per exit status."""
    rng = random.Random(seed)
    outcomes = {0: 0, 1: 0, 2: 0}
    saved = os.environ.get("EDGEREC_DEVICE_PROFILE")
    try:
        for case in range(cases):
            argv, env = _case(rng, pools, case)
            if env is None:
                os.environ.pop("EDGEREC_DEVICE_PROFILE", None)
            else:
                os.environ["EDGEREC_DEVICE_PROFILE"] = env
            name = f"case {case} {argv} env={env}"
            out, err = io.StringIO(), io.StringIO()
            t0 = time.perf_counter()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = main(argv)
            except SystemExit as exc:  # argparse: usage and one error line, exit 2
                code = exc.code if isinstance(exc.code, int) else 2
            except BaseException as exc:  # noqa: BLE001  (anything else is a traceback for a shell user)
                tally.add("cli", name, type(exc).__name__, time.perf_counter() - t0, False, str(exc))
                continue
            seconds = time.perf_counter() - t0
            lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
            if code == 1 and not (lines and lines[-1].startswith("edgerec: error: ")):
                tally.add("cli", name, "exit 1 without an error line", seconds, False, str(lines[-3:]))
            elif code not in (0, 1, 2):
                tally.add("cli", name, f"exit {code}", seconds, False)
            elif "Traceback" in err.getvalue():
                tally.add("cli", name, "traceback on stderr", seconds, False)
            else:
                tally.add("cli", name, {0: "result", 1: "one-line error", 2: "usage error"}[code], seconds, True)
            outcomes[code] = outcomes.get(code, 0) + 1
    finally:
        if saved is None:
            os.environ.pop("EDGEREC_DEVICE_PROFILE", None)
        else:
            os.environ["EDGEREC_DEVICE_PROFILE"] = saved
    return outcomes


def test_random_cli_invocations_end_in_a_result_or_one_line_of_error(pools):
    from tests.test_fuzz import Tally

    tally = Tally()
    outcomes = fuzz_cli(pools, tally)
    failures = tally.failures("cli")
    assert not failures, f"{len(failures)} of {CASES} cases escaped:\n" + "\n".join(failures[:25])
    assert outcomes[0] > 0 and outcomes[1] > 0, outcomes  # the cases reach real work, not only usage errors


@pytest.mark.parametrize("stage,needs", [("distill", "train"), ("quantize", "distill"), ("bundle", "quantize")])
def test_a_pipeline_stage_before_the_one_it_needs_is_one_line_of_error(tmp_path, capsys, stage, needs):
    pytest.importorskip("torch", reason="the pipeline stages need the server side")
    from tests.conftest import make_tiny_catalogue

    inter, items, media = make_tiny_catalogue(tmp_path / "data")
    argv = ["pipeline", stage, "--interactions", str(inter), "--items", str(items), "--media-root", str(media),
            "--work", str(tmp_path / "w"), "--out", str(tmp_path / "b")]
    assert main(argv) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err[-1].startswith("edgerec: error: ") and f"run the '{needs}' stage first" in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("command", ["export", "recent", "blocked", "forget"])
def test_an_option_value_argparse_turns_into_a_list_is_one_line_of_error(pools, command, capsys):
    """Found by the long fuzz run: ``--profile=--`` reaches the command as ``[]``."""
    argv = [command, "--bundle", str(pools["bundle"]), "--db", str(pools["root"] / "dash.db"), "--profile=--"]
    assert main(argv + (["--yes"] if command == "forget" else [])) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgerec: error: ") and "profile" in err[0]


def test_a_negative_keep_is_a_usage_error(pools, tmp_path, capsys):
    """Found by the second long fuzz run: ``bundle install --keep=-1`` was a ValueError traceback."""
    with pytest.raises(SystemExit) as stop:
        main(["bundle", "install", str(pools["bundle"]), "--store", str(tmp_path / "store"), "--keep=-1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("must be 0 or more, got -1") and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "store").exists()
