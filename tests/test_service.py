"""The local service (``edgerec serve``) on a real tiny bundle: the facade's answers over the
Unix socket and loopback HTTP, the token, file modes, request limits, shutdown, the CLI and
the example client. Servers run in-process in a background thread (the CLI test starts one
as a subprocess); every check is about correctness, none about time."""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge.context import Context
from edge.errors import EdgeError
from edge.bundle.store import bundle_id
from edge.recommender import Recommender
from edge.service import Limits, Service
from edge.service.protocol import REQUIRED

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_750_000_000
ROOMY = Limits(rate_per_s=1000, burst=1000, read_timeout_s=10)


@pytest.fixture
def short_dir():
    # AF_UNIX paths are limited to about 100 bytes; pytest's tmp_path can be longer.
    folder = Path(tempfile.mkdtemp(prefix="edgerec-svc-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def rec(device_bundle, tmp_path):
    r = Recommender.open(device_bundle.bundle, tmp_path / "h.db", backends=["onnx"])
    yield r
    r.close()


def serve(rec: Recommender, folder: Path, **kwargs) -> Service:
    kwargs.setdefault("limits", ROOMY)
    return Service(rec, folder / "run" / "edgerec.sock", **kwargs).start()


@pytest.fixture
def service(rec, short_dir):
    svc = serve(rec, short_dir)
    yield svc
    svc.stop()


class Client:
    """One connection speaking the line protocol."""

    def __init__(self, path: Path, token: str | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.lines = self.sock.makefile("rb")
        self.token = token

    def raw(self, data: bytes) -> dict | None:
        self.sock.sendall(data)
        return self.read()

    def read(self) -> dict | None:
        line = self.lines.readline()
        return json.loads(line) if line else None

    def send(self, request: object) -> dict | None:
        return self.raw(json.dumps(request).encode() + b"\n")

    def call(self, method: str, **params) -> dict | None:
        return self.send({"token": self.token, "method": method, "params": params})

    def result(self, method: str, **params):
        answer = self.call(method, **params)
        assert answer is not None and answer["ok"], answer
        return answer["result"]

    def close(self) -> None:
        self.lines.close()
        self.sock.close()


def error_type(answer: dict | None) -> str:
    assert answer is not None and answer["ok"] is False and set(answer) <= {"ok", "error", "id"}, answer
    return answer["error"]["type"]


def catalogue(rec: Recommender, n: int) -> list[str]:
    return [it.item_id for it in rec.bundle.items if int(it.item_id[1:]) % 2 == 0][:n]


def wav(path: Path) -> Path:
    rate = 16000
    t = np.arange(rate * 2) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


# -- the facade over the socket --------------------------------------------------------------

def test_recommend_record_and_add_item_match_the_facade(device_bundle, rec, short_dir, tmp_path):
    svc = serve(rec, short_dir)
    c = Client(svc.socket_path, svc.token)
    ids = catalogue(rec, 5)
    events = [c.result("record", profile="alice", item_id=i, kind="complete", timestamp=NOW + n * 60) for n, i in enumerate(ids)]
    source = wav(tmp_path / "recording.wav")
    added = c.result("add_item", source=str(source), title="My calm recording", tags=["calm"], profile="alice")
    served = c.result("recommend", profile="alice", k=40, device="tv", timestamp=NOW + 3600)
    speaker = c.result("recommend", profile="alice", k=5, device="speaker", timestamp=NOW + 3600)
    c.close()
    svc.stop()

    # The same recommender, called directly once the service has let go of it.
    assert [e["event_id"] for e in events] == [e.id for e in reversed(rec.history.recent("alice", 5))]
    direct = rec.recommend("alice", k=40, context=Context.at(NOW + 3600, "tv"))
    assert served == [dataclasses.asdict(r) for r in direct]
    assert added["item_id"] in [r["item_id"] for r in served]
    assert speaker == [dataclasses.asdict(r) for r in rec.recommend("alice", k=5, context=Context.at(NOW + 3600, "speaker"))]
    with Recommender.open(device_bundle.bundle, tmp_path / "direct.db", backends=["onnx"]) as other:
        assert other.add_item(source, "My calm recording", tags=["calm"], profile="alice") == added["item_id"]
        np.testing.assert_array_equal(other.history.local_items("alice")[0].embedding, rec.history.local_items("alice")[0].embedding)


def test_profile_block_export_forget_and_health(service, rec):
    c = Client(service.socket_path, service.token)
    assert c.result("add_profile", profile="kid", age_limit=12) == {"profile": "kid", "age_limit": 12}
    assert c.result("add_profile", profile="kid", age_limit=18) == {"profile": "kid", "age_limit": 12}  # existing: kept
    first = catalogue(rec, 1)[0]
    c.result("record", profile="kid", item_id=first, timestamp=NOW)
    top = c.result("recommend", profile="kid", k=3, timestamp=NOW + 60)[0]["item_id"]
    assert c.result("block", profile="kid", item_id=top) == {"blocked_items": [top]}
    assert top not in [r["item_id"] for r in c.result("recommend", profile="kid", k=40, timestamp=NOW + 60)]
    assert c.result("block", profile="kid", item_id=top, blocked=False) == {"blocked_items": []}
    exported = c.result("export", profile="kid")
    assert exported["profile"]["age_limit"] == 12 and [e["item_id"] for e in exported["events"]] == [first]
    forgotten = c.result("forget", profile="kid")
    assert forgotten["profile"] == "kid" and forgotten["events"] == 1
    assert error_type(c.call("recommend", profile="kid")) == "HistoryError"
    health = c.result("health")
    b = rec.bundle
    assert health["bundle"]["items"] == len(b.items) and health["bundle"]["created_at"] == b.manifest["created_at"]
    assert health["backend"] == "onnx" and health["bundle"]["id"] == bundle_id(b.root, b.manifest)
    assert health["history"] == {"path": str(rec.history.path), "recovered_from": None, "salvaged": {}} and health["uptime_s"] >= 0
    c.close()


def test_profiles_recent_and_blocked_answer_what_the_facade_does(service, rec):
    c = Client(service.socket_path, service.token)
    ids = catalogue(rec, 3)
    for n, (item, kind) in enumerate(zip(ids, ["play", "complete", "skip"])):
        c.result("record", profile="erin", item_id=item, kind=kind, timestamp=NOW + n, value=0.5, device="speaker")
    c.result("block", profile="erin", item_id=ids[0])
    c.result("add_profile", profile="frank")
    profiles = c.result("profiles")
    recent = c.result("recent", profile="erin", n=2)
    completes = c.result("recent", profile="erin", kinds=["complete"])
    everything = c.result("recent", profile="erin")
    blocked = c.result("blocked", profile="erin")
    assert error_type(c.call("recent", profile="nobody")) == "HistoryError"
    assert error_type(c.call("recent", profile="erin", kinds=["explode"])) == "HistoryError"
    c.close()
    service.stop()
    assert profiles == {"profiles": rec.profiles()} and {"erin", "frank"} <= set(profiles["profiles"])
    assert recent == json.loads(json.dumps([dataclasses.asdict(e) for e in rec.recent("erin", 2)])) and [e["item_id"] for e in recent] == ids[:0:-1]
    assert recent[0]["tags"] == list(rec.recent("erin", 1)[0].tags) and recent[0]["device"] == "speaker"
    assert [e["item_id"] for e in completes] == [ids[1]] and len(everything) == 3
    assert blocked == {"blocked_items": [ids[0]]} == {"blocked_items": rec.blocked("erin")}


def test_every_method_is_the_facade_method_of_the_same_name_with_its_argument_names():
    import inspect

    from edge.service import METHODS

    facade = {name for name, f in vars(Recommender).items() if callable(f) and not name.startswith("_")} - {"open", "close"}
    assert set(METHODS) == facade
    not_served = {("recommend", "context"), ("home", "context"), ("who_is_watching", "context"), ("export", "path")}  # a Python object; a file the service would write
    for method, params in METHODS.items():
        signature = inspect.signature(getattr(Recommender, method))
        arguments = [n for n in signature.parameters if n != "self"]
        assert [p.name for p in params] == [n for n in arguments if (method, n) not in not_served], method
        for p in params:
            default = signature.parameters[p.name].default
            if p.default is not REQUIRED and default is not inspect.Parameter.empty:
                assert p.default == default, (method, p.name)


def test_importing_the_service_leaves_asyncio_unloaded():
    code = "import sys, edge.service, edge.cli.serve; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_edge_errors_come_back_with_their_class_name(service, tmp_path):
    c = Client(service.socket_path, service.token)
    assert error_type(c.call("recommend", profile="nobody")) == "HistoryError"
    answer = c.call("record", profile="alice", item_id="no-such-item")
    assert error_type(answer) == "HistoryError" and "no-such-item" in answer["error"]["message"]
    assert error_type(c.call("add_item", source=str(tmp_path / "missing.wav"), title="x")) == "FeatureError"
    assert error_type(c.call("record", profile="alice", item_id=catalogue_first(service), kind="binge")) == "HistoryError"
    c.close()


def catalogue_first(service: Service) -> str:
    return service.recommender.bundle.items[0].item_id


def test_request_id_is_echoed(service):
    c = Client(service.socket_path, service.token)
    assert c.send({"token": service.token, "method": "health", "id": "a1"})["id"] == "a1"
    assert c.send({"token": service.token, "method": "recommend", "params": {"profile": "nobody"}, "id": 7})["id"] == 7
    c.close()


# -- access control --------------------------------------------------------------------------

def test_requests_without_or_with_a_wrong_token_are_refused_and_reveal_nothing(service, rec):
    good = Client(service.socket_path, service.token)
    item = catalogue(rec, 1)[0]
    good.result("record", profile="alice", item_id=item, timestamp=NOW)
    bad = Client(service.socket_path)
    attempts = [
        {"method": "export", "params": {"profile": "alice"}},
        {"token": None, "method": "recommend", "params": {"profile": "alice"}},
        {"token": "", "method": "export", "params": {"profile": "alice"}},
        {"token": service.token[:-1] + ("A" if service.token[-1] != "A" else "B"), "method": "export", "params": {"profile": "alice"}},
        {"token": service.token + "x", "method": "recommend", "params": {"profile": "alice"}},
        {"token": 12345, "method": "health"},
        {"token": "wrong", "method": "record", "params": {"profile": "alice", "item_id": item}},
        {"token": "wrong", "method": "forget", "params": {"profile": "alice"}},
        {"token": "wrong", "method": "no-such-method"},
    ]
    for request in attempts:
        answer = bad.send(request)
        assert error_type(answer) == "AuthError", request
        text = json.dumps(answer)
        assert "alice" not in text and item not in text and "result" not in answer
    bad.close()
    # Nothing was recorded or forgotten by the refused requests.
    assert [e["item_id"] for e in good.result("export", profile="alice")["events"]] == [item]
    good.close()


def test_socket_is_0600_in_a_0700_folder_and_the_token_file_is_0600(service):
    assert stat.S_ISSOCK(os.lstat(service.socket_path).st_mode)
    assert stat.S_IMODE(os.lstat(service.socket_path).st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(service.socket_path.parent).st_mode) == 0o700
    assert service.token_file == service.socket_path.parent / "token" and service.token_created
    assert stat.S_IMODE(os.lstat(service.token_file).st_mode) == 0o600
    assert service.token_file.read_text().strip() == service.token and len(service.token) >= 43
    assert sorted(os.listdir(service.socket_path.parent)) == ["edgerec.sock", "token"]  # no temporary left behind


def test_the_token_file_is_reused_and_must_be_private(rec, short_dir):
    token_file = short_dir / "keys" / "token"
    first = serve(rec, short_dir, token_file=token_file)
    token = first.token
    first.stop()
    again = serve(rec, short_dir, token_file=token_file)
    assert again.token == token and not again.token_created
    again.stop()
    os.chmod(token_file, 0o644)
    with pytest.raises(EdgeError, match="readable by other users"):
        serve(rec, short_dir, token_file=token_file)


def test_a_socket_folder_open_to_others_is_refused(rec, short_dir):
    open_folder = short_dir / "open"
    open_folder.mkdir(mode=0o755)
    os.chmod(open_folder, 0o755)
    with pytest.raises(EdgeError, match="open to other users"):
        Service(rec, open_folder / "edgerec.sock").start()
    assert not (open_folder / "edgerec.sock").exists()


def test_a_running_service_is_not_replaced_but_a_stale_socket_is(rec, short_dir):
    first = serve(rec, short_dir)
    path = first.socket_path
    with pytest.raises(EdgeError, match="already listening"):
        serve(rec, short_dir)
    assert Client(path, first.token).result("health")["backend"] == "onnx"  # still the first one
    first.stop()
    assert not path.exists()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # a service killed without cleaning up leaves this behind
    stale.close()
    second = serve(rec, short_dir)
    assert Client(path, second.token).result("health")["backend"] == "onnx"
    second.stop()
    path.write_text("not a socket")
    with pytest.raises(EdgeError, match="not a socket"):
        serve(rec, short_dir)


# -- malformed requests and limits -----------------------------------------------------------

def test_malformed_requests_get_request_error_and_the_connection_stays_usable(service):
    t = service.token
    c = Client(service.socket_path, t)
    bad = [
        b"this is not json\n",
        b"[1, 2, 3]\n",
        b'"a string"\n',
        b"\n",
        b"\xff\xfe{}\n",
        b'{"token": "' + t.encode() + b'", "method": "recommend", "params": {"profile": "a", "timestamp": NaN}}\n',
        b"[" * 5000 + b"]" * 5000 + b"\n",
    ]
    for line in bad:
        assert error_type(c.raw(line)) == "RequestError", line[:60]
    requests = [
        {"token": t, "method": "no_such_method"},
        {"token": t},
        {"token": t, "method": 42},
        {"token": t, "method": "recommend", "params": ["alice"]},
        {"token": t, "method": "recommend", "params": {}},
        {"token": t, "method": "recommend", "params": {"profile": 5}},
        {"token": t, "method": "recommend", "params": {"profile": "a", "k": "10"}},
        {"token": t, "method": "recommend", "params": {"profile": "a", "k": True}},
        {"token": t, "method": "recommend", "params": {"profile": "a", "k": 0}},
        {"token": t, "method": "recommend", "params": {"profile": "a", "device": "fridge"}},
        {"token": t, "method": "recommend", "params": {"profile": "a", "colour": "red"}},
        {"token": t, "method": "record", "params": {"profile": "a", "item_id": "i000", "timestamp": "yesterday"}},
        {"token": t, "method": "record", "params": {"profile": "a", "item_id": "i000", "at": NOW}},  # the old name
        {"token": t, "method": "recent", "params": {"profile": "a", "n": -1}},
        {"token": t, "method": "recent", "params": {"profile": "a", "kinds": "play"}},
        {"token": t, "method": "export", "params": {"profile": "a", "path": "/tmp/x.json"}},  # no path over the service
        {"token": t, "method": "record", "params": {"profile": "a", "item_id": "i000", "value": 1e400}},
        {"token": t, "method": "add_item", "params": {"source": "relative/clip.wav", "title": "x"}},
        {"token": t, "method": "add_item", "params": {"source": "/a.wav", "title": "x", "tags": ["ok", 3]}},
        {"token": t, "method": "block", "params": {"profile": "a", "item_id": "i000", "blocked": "yes"}},
        {"token": t, "method": "health", "extra": 1},
        {"token": t, "method": "health", "id": [1]},
    ]
    for request in requests:
        assert error_type(c.send(request)) == "RequestError", request
    answer = c.send({"token": t, "method": "recommend", "params": {"profile": "a", "k": "10"}})
    assert "'k'" in answer["error"]["message"] and "integer" in answer["error"]["message"]
    assert c.result("health")["bundle"]["items"] > 0  # the same connection still works
    c.close()


def test_an_oversize_request_is_refused_and_others_are_still_served(rec, short_dir):
    svc = serve(rec, short_dir, limits=Limits(max_request_bytes=1024, rate_per_s=1000, burst=1000, read_timeout_s=10))
    other = Client(svc.socket_path, svc.token)
    big = Client(svc.socket_path, svc.token)
    for size in (1025, 200_000):  # just over the limit, and far over the reader's buffer
        big = Client(svc.socket_path, svc.token)
        answer = big.raw(b"x" * size + b"\n")
        assert error_type(answer) == "RequestError" and "longer than 1024 bytes" in answer["error"]["message"]
        assert big.read() is None  # closed: the stream cannot be resynchronised
        big.close()
    # A request of exactly the limit is served, and so are other connections.
    assert other.result("health")["backend"] == "onnx"
    head = json.dumps({"token": svc.token, "method": "recommend", "params": {"profile": ""}})
    exact = head.replace('"profile": ""', '"profile": "' + "p" * (1024 - len(head)) + '"').encode()
    assert len(exact) == 1024
    assert error_type(other.raw(exact + b"\n")) == "HistoryError"
    svc.stop()


def test_concurrent_clients_are_served_one_facade_call_at_a_time(service, rec):
    items = catalogue(rec, 4)
    errors: list[object] = []

    def client(n: int) -> None:
        c = Client(service.socket_path, service.token)
        for j in range(10):
            answer = c.call("record", profile=f"user{n}", item_id=items[j % 4], timestamp=NOW + j)
            if not answer["ok"]:
                errors.append(answer)
            answer = c.call("recommend", profile=f"user{n}", k=3, timestamp=NOW + 100)
            if not answer["ok"]:
                errors.append(answer)
        c.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    c = Client(service.socket_path, service.token)
    assert [len(c.result("export", profile=f"user{n}")["events"]) for n in range(8)] == [10] * 8
    c.close()


def test_the_rate_limit_answers_rate_limited(rec, short_dir):
    svc = serve(rec, short_dir, limits=Limits(rate_per_s=0.001, burst=3, read_timeout_s=10))
    c = Client(svc.socket_path, svc.token)
    answers = [c.call("health") for _ in range(5)]
    assert [a["ok"] for a in answers] == [True, True, True, False, False]
    assert error_type(answers[3]) == "RateLimited"
    # Per client process, not per connection: reconnecting does not refill the bucket.
    again = Client(svc.socket_path, svc.token)
    assert error_type(again.call("health")) == "RateLimited"
    c.close()
    again.close()
    svc.stop()


def test_connections_over_the_cap_are_answered_busy(rec, short_dir):
    svc = serve(rec, short_dir, limits=Limits(max_connections=1, rate_per_s=1000, burst=1000, read_timeout_s=10))
    first = Client(svc.socket_path, svc.token)
    assert first.result("health")
    second = Client(svc.socket_path, svc.token)
    assert error_type(second.read()) == "Busy"
    second.close()
    first.close()
    svc.stop()


def test_an_idle_client_is_disconnected_after_the_read_timeout(rec, short_dir):
    svc = serve(rec, short_dir, limits=Limits(read_timeout_s=0.2))
    c = Client(svc.socket_path, svc.token)
    c.sock.sendall(b'{"token": "')  # starts a request and never finishes it
    answer = c.read()
    assert error_type(answer) == "RequestError" and "no complete request" in answer["error"]["message"]
    assert c.read() is None
    c.close()
    svc.stop()


def test_an_unexpected_failure_is_logged_and_answered_without_details(rec, short_dir, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail /home/alice")

    monkeypatch.setattr(rec, "recommend", broken)
    svc = serve(rec, short_dir)
    c = Client(svc.socket_path, svc.token)
    with caplog.at_level(logging.ERROR, logger="edge.service"):
        answer = c.call("recommend", profile="alice")
    assert error_type(answer) == "InternalError"
    assert "secret" not in answer["error"]["message"] and "Traceback" not in answer["error"]["message"]
    assert "secret detail" in caplog.text
    assert c.result("health")  # still serving
    c.close()
    svc.stop()


# -- HTTP ------------------------------------------------------------------------------------

def http_post(address, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    status, doc = resp.status, json.loads(resp.read())
    conn.close()
    return status, doc


def test_http_on_loopback_with_the_bearer_token(rec, short_dir):
    svc = serve(rec, short_dir, http_port=0)
    address = svc.http_address
    assert address[0] == "127.0.0.1"
    auth = {"Authorization": f"Bearer {svc.token}", "Content-Type": "application/json"}
    item = catalogue(rec, 1)[0]

    status, doc = http_post(address, "/v1/record", json.dumps({"profile": "bob", "item_id": item, "timestamp": NOW}).encode(), auth)
    assert status == 200 and doc["ok"] and isinstance(doc["result"]["event_id"], int)
    status, doc = http_post(address, "/v1/recommend", json.dumps({"profile": "bob", "k": 4, "timestamp": NOW + 60}).encode(), auth)
    assert status == 200 and len(doc["result"]) == 4
    status, doc = http_post(address, "/v1/health", b"", auth)
    assert status == 200 and doc["result"]["backend"] == "onnx"

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": svc.token}):
        status, doc = http_post(address, "/v1/export", json.dumps({"profile": "bob"}).encode(), headers)
        assert status == 401 and error_type(doc) == "AuthError" and "bob" not in json.dumps(doc)
    status, doc = http_post(address, "/v1/recommend", b"{not json", auth)
    assert status == 400 and error_type(doc) == "RequestError"
    status, doc = http_post(address, "/v1/nope", b"{}", auth)
    assert status == 400 and error_type(doc) == "RequestError"
    status, doc = http_post(address, "/v1/recommend", json.dumps({"profile": "nobody"}).encode(), auth)
    assert status == 422 and error_type(doc) == "HistoryError"
    status, doc = http_post(address, "/v1/health", b"x" * (ROOMY.max_request_bytes + 1), auth)
    assert status == 413 and error_type(doc) == "RequestError"

    conn = http.client.HTTPConnection(*address, timeout=10)
    conn.request("GET", "/v1/health", headers=auth)
    resp = conn.getresponse()
    assert resp.status == 405 and error_type(json.loads(resp.read())) == "RequestError"
    conn.close()
    conn = http.client.HTTPConnection(*address, timeout=10)
    conn.putrequest("POST", "/v1/health", skip_host=True)
    conn.putheader("Host", "evil.example:80")  # DNS rebinding
    conn.putheader("Authorization", f"Bearer {svc.token}")
    conn.putheader("Content-Length", "0")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 400 and "loopback" in json.loads(resp.read())["error"]["message"]
    conn.close()
    svc.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com"])
def test_http_refuses_a_non_loopback_address(rec, short_dir, host):
    with pytest.raises(EdgeError, match="loopback"):
        Service(rec, short_dir / "run" / "edgerec.sock", http_port=0, http_host=host)
    assert not (short_dir / "run").exists()  # refused before anything was created


# -- shutdown, CLI and the example client ----------------------------------------------------

def test_stop_removes_the_socket_file(rec, short_dir):
    svc = serve(rec, short_dir)
    c = Client(svc.socket_path, svc.token)
    assert c.result("health")
    svc.stop()
    assert not svc.socket_path.exists()
    assert c.read() is None  # idle connections are closed
    c.close()


def test_stop_lets_a_running_request_finish(rec, short_dir, monkeypatch):
    facade = rec.recommend
    entered = threading.Event()

    def slow(*args, **kwargs):
        entered.set()
        time.sleep(0.3)  # still inside the facade when stop() is called
        return facade(*args, **kwargs)

    monkeypatch.setattr(rec, "recommend", slow)
    svc = serve(rec, short_dir)
    c = Client(svc.socket_path, svc.token)
    c.result("add_profile", profile="dave")
    c.sock.sendall(json.dumps({"token": svc.token, "method": "recommend", "params": {"profile": "dave", "k": 2}}).encode() + b"\n")
    assert entered.wait(10)
    stopper = threading.Thread(target=svc.stop)
    stopper.start()
    answer = c.read()
    stopper.join()
    assert answer is not None and answer["ok"] and len(answer["result"]) == 2
    assert c.read() is None and not svc.socket_path.exists()
    c.close()


def test_the_example_client_records_and_prints_recommendations(service, rec):
    item = catalogue(rec, 1)[0]
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "service_client.py"), "--socket", str(service.socket_path),
         "--profile", "carol", "--item-id", item, "--kind", "complete", "-k", "3"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"recorded complete of {item} for carol") and len(lines) == 4
    titles = {it.title for it in rec.bundle.items}
    assert all(any(t in line for t in titles) for line in lines[1:])
    wrong = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "service_client.py"), "--socket", str(service.socket_path),
         "--token-file", os.devnull, "--profile", "carol", "--item-id", item],
        capture_output=True, text=True, timeout=60,
    )
    assert wrong.returncode == 1 and "AuthError" in wrong.stderr


def test_serve_command_prints_where_it_listens_and_stops_on_sigterm(device_bundle, short_dir):
    sock = short_dir / "run" / "edgerec.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "serve", "--bundle", str(device_bundle.bundle), "--db", str(short_dir / "h.db"),
         "--socket", str(sock), "--backends", "onnx"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if "stops" in line:
                break
        text = "".join(printed)
        assert f"unix:{sock}" in text and str(sock.parent / "token") in text, text + proc.stderr.read()
        token = (sock.parent / "token").read_text().strip()
        assert Client(sock, token).result("health")["backend"] == "onnx"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "stopped" in proc.stdout.read()
        assert not sock.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_strangers_on_loopback_http_cannot_drain_the_apps_budget(rec, short_dir):
    """Issue 14 item 8: every local process and web page is 127.0.0.1, so the rate bucket
    goes by the token, and requests without it are counted apart."""
    svc = serve(rec, short_dir, http_port=0, limits=Limits(rate_per_s=0.001, burst=3, read_timeout_s=10))
    address = svc.http_address
    statuses = [http_post(address, "/v1/health", b"", {"Authorization": "Bearer wrong"})[0] for _ in range(6)]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429, 429]
    auth = {"Authorization": f"Bearer {svc.token}"}
    assert [http_post(address, "/v1/health", b"", auth)[0] for _ in range(4)] == [200, 200, 200, 429]
    svc.stop()


def test_http_connections_do_not_take_the_unix_sockets_slots(rec, short_dir):
    svc = serve(rec, short_dir, http_port=0, limits=Limits(max_connections=1, rate_per_s=1000, burst=1000, read_timeout_s=10))
    idle = socket.create_connection(svc.http_address, timeout=10)  # a web page holding a connection open
    try:
        deadline = time.monotonic() + 30
        while not svc._conns and time.monotonic() < deadline:  # until the service counts it in
            time.sleep(0.01)
        assert len(svc._conns) == 1
        c = Client(svc.socket_path, svc.token)
        assert c.result("health")["backend"] == "onnx"
        c.close()
    finally:
        idle.close()
        svc.stop()


def test_add_item_refuses_a_fifo_instead_of_blocking_the_worker(rec, short_dir, tmp_path):
    fifo = tmp_path / "movie.wav"
    os.mkfifo(fifo)
    svc = serve(rec, short_dir)
    c = Client(svc.socket_path, svc.token)
    answer = c.call("add_item", source=str(fifo), title="stream", profile=None)
    assert error_type(answer) == "FeatureError" and "FIFO" in answer["error"]["message"]
    assert c.result("health")  # the worker is free
    c.close()
    svc.stop()


def test_add_item_past_the_decode_time_limit_is_a_feature_error_and_the_service_goes_on(rec, short_dir, tmp_path):
    """The decode runs in a child process killed at the limit (a process start alone takes
    longer than the 1 ms here, so this does not depend on the machine's speed)."""
    svc = serve(rec, short_dir, limits=dataclasses.replace(ROOMY, decode_timeout_s=0.001))
    c = Client(svc.socket_path, svc.token)
    answer = c.call("add_item", source=str(wav(tmp_path / "tone.wav")), title="tone")
    assert error_type(answer) == "FeatureError" and "longer than 0.001 s" in answer["error"]["message"]
    assert c.result("health")
    c.close()
    svc.stop()


def test_add_item_in_a_child_process_gives_the_same_item(rec, short_dir, tmp_path):
    svc = serve(rec, short_dir, limits=dataclasses.replace(ROOMY, decode_timeout_s=120))
    c = Client(svc.socket_path, svc.token)
    item = c.result("add_item", source=str(wav(tmp_path / "tone.wav")), title="tone", item_id="local:tone")
    c.close()
    svc.stop()
    rec.decode_timeout_s = None
    rec.add_item(tmp_path / "tone.wav", "tone", item_id="local:tone-here")
    got = {it.item_id: it.embedding for it in rec.history.local_items()}
    assert item["item_id"] == "local:tone" and np.allclose(got["local:tone"], got["local:tone-here"], atol=1e-6)
