"""The real deployment: ``edgerec serve`` and app and CLI processes on one history file
(issue 14 item 6), with retention trimming, ``forget`` vacuuming beside the writers and retries
by client id. Sized by work, not by the clock: every acknowledged event is stored (or, being
among a profile's oldest, trimmed by retention), and no caller ever sees "database is locked"."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from edge.history import HistoryStore
from edge.profiles import PROFILE_DIR

ROOT = Path(__file__).resolve().parents[1]
CAP = 150
EVENTS = 240  # per writer: past the cap, so retention trims while others write

APP = r"""
import json, sys
from edge.errors import HistoryError
from edge.profiles import load_profile
from edge.recommender import Recommender

bundle, db, profile_toml, who, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
acked, errors = [], []
with Recommender.open(bundle, db, device_profile=load_profile(profile_toml)) as rec:
    items = [it.item_id for it in rec.bundle.items]
    for i in range(n):
        cid = f"{who}:{i}"
        for attempt in range(20):  # a retry with the same client id cannot store twice
            try:
                rec.record(who, items[i % len(items)], "play", timestamp=1_760_000_000 + i, client_id=cid)
                acked.append(cid)
                break
            except HistoryError as exc:
                errors.append(str(exc))
        if i % 40 == 0:
            rec.recommend(who, k=5)
print(json.dumps({"acked": acked, "errors": errors}))
"""

FORGETTER = r"""
import json, sys
from edge.errors import HistoryError
from edge.profiles import load_profile
from edge.recommender import Recommender

bundle, db, profile_toml, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
errors, forgotten = [], 0
with Recommender.open(bundle, db, device_profile=load_profile(profile_toml)) as rec:
    items = [it.item_id for it in rec.bundle.items]
    for r in range(rounds):
        try:
            for i in range(20):
                rec.record("temp", items[i], "play", timestamp=1_760_000_000 + i)
            rec.forget("temp")  # VACUUM and a WAL checkpoint while the others write
            forgotten += 1
        except HistoryError as exc:
            errors.append(str(exc))
print(json.dumps({"forgotten": forgotten, "errors": errors}))
"""

SERVICE_CLIENT = r"""
import json, socket, sys
path, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
items = json.loads(sys.argv[4])
acked, errors = [], []
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(path)
f = s.makefile("rb")
for i in range(n):
    cid = f"svc:{i}"
    for attempt in range(20):
        req = {"token": token, "method": "record", "params": {"profile": "svc", "item_id": items[i % len(items)], "timestamp": 1_760_000_000 + i, "client_id": cid}}
        s.sendall(json.dumps(req).encode() + b"\n")
        answer = json.loads(f.readline())
        if answer["ok"]:
            acked.append(cid)
            break
        errors.append(answer["error"]["message"])
        if answer["error"]["type"] == "RateLimited":
            import time; time.sleep(0.05)
print(json.dumps({"acked": acked, "errors": errors}))
"""


def _profile(folder: Path) -> Path:
    text = (PROFILE_DIR / "x86-dev.toml").read_text()
    text = re.sub(r"(?m)^max_events_per_profile = .*$", f"max_events_per_profile = {CAP}", text)
    path = folder / "device.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_service_app_and_cli_processes_on_one_history_lose_nothing_acknowledged(device_bundle, tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="edgerec-mp-"))  # AF_UNIX paths must stay short
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    env.pop("EDGEREC_DEVICE_PROFILE", None)
    db, bundle, profile = folder / "history.db", str(device_bundle.bundle), str(_profile(folder))
    sock, token_file = folder / "run" / "edgerec.sock", folder / "token"
    service = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--bundle", bundle, "--db", str(db), "--socket", str(sock),
                                "--token-file", str(token_file), "--device-profile", profile, "--rate", "100000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    procs = {}
    try:
        deadline = time.monotonic() + 120
        while not (sock.exists() and token_file.exists()) and time.monotonic() < deadline and service.poll() is None:
            time.sleep(0.05)
        assert sock.exists(), service.stderr.read() if service.poll() is not None else "the service did not start"
        from edge.bundle import Bundle

        items = [it.item_id for it in Bundle.open(bundle).items][:20]
        run = lambda *argv: subprocess.Popen([sys.executable, "-c", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # noqa: E731
        procs["app0"] = run(APP, bundle, str(db), profile, "app0", str(EVENTS))
        procs["app1"] = run(APP, bundle, str(db), profile, "app1", str(EVENTS))
        procs["svc"] = run(SERVICE_CLIENT, str(sock), token_file.read_text().strip(), str(EVENTS), json.dumps(items))
        procs["forget"] = run(FORGETTER, bundle, str(db), profile, "8")
        cli_acked, cli_errors = [], []
        for i in range(4):  # CLI processes, one event each, the last one retried
            for _ in range(2 if i == 3 else 1):
                argv = [sys.executable, "-m", "edge.cli", "record", "--bundle", bundle, "--db", str(db), "--device-profile", profile,
                        "--profile", "cli", "--item-id", items[i], "--timestamp", str(1_760_000_000 + i), "--client-id", f"cli:{i}"]
                done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
                if done.returncode == 0:
                    cli_acked.append(f"cli:{i}")
                else:
                    cli_errors.append(done.stderr.strip())
        results = {}
        for name, p in procs.items():
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, f"{name}: {err[-2000:]}"
            results[name] = json.loads(out.strip().splitlines()[-1])
    finally:
        service.terminate()
        service.communicate(timeout=60)
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    errors = [e for r in results.values() for e in r["errors"]] + cli_errors
    assert not [e for e in errors if "locked" in e or "busy" in e.lower()], errors[:5]
    assert results["forget"]["forgotten"] == 8 and not results["forget"]["errors"]
    with HistoryStore(db, max_events_per_profile=None) as h:
        assert h.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert "temp" not in h.profiles() or h.count("temp") == 0
        for who in ("app0", "app1", "svc"):
            acked = results[who]["acked"]
            assert len(acked) == EVENTS, (who, results[who]["errors"][:3])
            stored = [e.client_id for e in reversed(h.recent(who, 10 * CAP))]
            # Retention deletes the oldest; what remains is exactly the newest acknowledged, once each.
            assert CAP <= len(stored) <= CAP * 1.01 + 1 and stored == acked[-len(stored):], who
        # The last CLI event was sent twice with its client id: stored once.
        assert cli_acked == ["cli:0", "cli:1", "cli:2", "cli:3", "cli:3"], cli_errors
        assert [e.client_id for e in reversed(h.recent("cli", 10))] == ["cli:0", "cli:1", "cli:2", "cli:3"]
    shutil.rmtree(folder, ignore_errors=True)
