"""The columnar interaction readers (streaming CSV through pyarrow, Parquet) against the row
reader, the reference semantics of the data contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="the columnar readers are server-side: pip install 'edgerec[export]'")
import pyarrow.parquet as pq  # noqa: E402

from edge.errors import DataError  # noqa: E402
from export.data import columnar, contract  # noqa: E402
from export.data.contract import Interactions, load_interactions  # noqa: E402
from export.data.split import Ragged  # noqa: E402

CSV = (
    "\ufeffuser_id,item_id,timestamp,event,value\n"
    ' u1 ,a,1700000000,complete,0.9\n'
    'u2,"b,c",2023-11-14T22:13:20Z,,\n'
    "u1,a,1700000005.7,rate,4\n"
    'u3,"multi\nline",2023-11-14T22:13:20+01:00,skip,0.1\n'
    "u2,a,1700000001,  like ,\n"
)


def _same(a: Interactions, b: Interactions) -> None:
    assert a.user_ids.tolist() == b.user_ids.tolist()
    assert a.item_ids.tolist() == b.item_ids.tolist()
    assert a.events.tolist() == b.events.tolist()
    assert a.timestamps.tolist() == b.timestamps.tolist()
    np.testing.assert_array_equal(a.values, b.values)  # NaN == NaN here
    assert a.kinds.dtype == np.int8 and a.user_codes.dtype == np.int32 and a.values.dtype == np.float32


def _no_row_reader(monkeypatch) -> None:
    def refuse(*_):
        raise AssertionError("the row reader was used")

    monkeypatch.setattr(contract, "_load_interactions_rows", refuse)


def test_columnar_csv_equals_the_row_reader(tmp_path, monkeypatch):
    p = tmp_path / "interactions.csv"
    p.write_text(CSV, encoding="utf-8")
    rows = contract._load_interactions_rows(p, None)
    assert rows.user_ids.tolist() == ["u1", "u2", "u1", "u3", "u2"]
    assert rows.events.tolist() == ["complete", "play", "rate", "skip", "like"]
    _no_row_reader(monkeypatch)
    _same(load_interactions(p, known_items={"a", "b,c", "multi\nline"}), rows)


def test_a_log_without_optional_columns_reads_as_columns(tmp_path, monkeypatch):
    p = tmp_path / "interactions.csv"
    p.write_text("item_id,user_id,timestamp\nx,1,5\ny,2,6\nx,1,7\n")
    _no_row_reader(monkeypatch)
    inter = load_interactions(p)
    assert inter.item_ids.tolist() == ["x", "y", "x"] and inter.user_ids.tolist() == ["1", "2", "1"]
    assert inter.events.tolist() == ["play"] * 3 and np.isnan(inter.values).all()
    assert inter.user_vocab.tolist() == ["1", "2"]  # distinct ids once, codes per row


def test_a_short_row_the_contract_accepts_goes_through_the_row_reader(tmp_path):
    # csv.DictReader fills a missing trailing field with None; Arrow refuses the row shape.
    p = tmp_path / "interactions.csv"
    p.write_text("user_id,item_id,timestamp,event\nu,a,1,like\nu,b,2\n")
    inter = load_interactions(p)
    assert inter.events.tolist() == ["like", "play"]


@pytest.mark.parametrize("row, line, column", [
    ("u,a,yesterday,play,", 4, "timestamp"),
    ("u,a,99999999999,play,", 4, "timestamp"),
    ("u,a,5,watch,", 4, "event"),
    ("u,a,5,play,lots", 4, "value"),
    ("u,a,5,play,inf", 4, "value"),
    ("u,zzz,5,play,", 4, "item_id"),
    (",a,5,play,", 4, "user_id"),
])
def test_a_bad_row_deep_in_the_file_is_named_exactly(tmp_path, row, line, column):
    p = tmp_path / "interactions.csv"
    p.write_text(f"user_id,item_id,timestamp,event,value\nu,a,1,play,\nu,b,2,,\n{row}\nu,a,9,play,\n")
    with pytest.raises(DataError, match=f"line {line}, column '{column}'"):
        load_interactions(p, known_items={"a", "b"})


def test_a_bad_row_after_many_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(columnar, "BLOCK_BYTES", 1 << 10)  # many small batches
    p = tmp_path / "interactions.csv"
    lines = [f"u{i % 7},i{i % 13},{1_700_000_000 + i},play," for i in range(2000)]
    lines[1500] = "u1,i1,1700000000,play,NaN"
    p.write_text("user_id,item_id,timestamp,event,value\n" + "\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 1502, column 'value': not a finite number"):
        load_interactions(p)
    lines[1500] = "u1,i1,1700000000,play,0.5"
    p.write_text("user_id,item_id,timestamp,event,value\n" + "\n".join(lines) + "\n")
    inter = load_interactions(p)
    assert len(inter) == 2000 and len(inter.user_vocab) == 7 and len(inter.item_vocab) == 13
    assert inter.values[1500] == 0.5 and inter.timestamps[1999] == 1_700_001_999


def test_parquet_round_trip(tmp_path):
    src = tmp_path / "interactions.csv"
    src.write_text(CSV, encoding="utf-8")
    inter = load_interactions(src)
    columnar.write_parquet_interactions(tmp_path / "log.parquet", inter, rows_per_group=2)
    _same(load_interactions(tmp_path / "log.parquet"), inter)


def test_typed_parquet_columns(tmp_path):
    table = pa.table({
        "user_id": pa.array([10, 11, 10], pa.int64()),
        "item_id": pa.array(["a", "b", "a"]),
        "timestamp": pa.array([1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_000], pa.timestamp("ms", tz="UTC")),
        "event": pa.array(["play", None, "like"]).dictionary_encode(),
        "value": pa.array([0.5, None, None], pa.float64()),
    })
    pq.write_table(table, tmp_path / "log.parquet")
    inter = load_interactions(tmp_path / "log.parquet", known_items={"a", "b"})
    assert inter.user_ids.tolist() == ["10", "11", "10"]
    assert inter.timestamps.tolist() == [1_700_000_000, 1_700_000_001, 1_700_000_002]
    assert inter.events.tolist() == ["play", "play", "like"]
    assert inter.values[0] == 0.5 and math.isnan(inter.values[1])


def test_parquet_errors_name_row_and_column(tmp_path):
    pq.write_table(pa.table({"user_id": ["u", "u"], "item_id": ["a", "a"], "timestamp": [1, -5]}), tmp_path / "neg.parquet")
    with pytest.raises(DataError, match=r"neg.parquet, row 2, column 'timestamp'.*outside 1970..2100"):
        load_interactions(tmp_path / "neg.parquet")
    pq.write_table(pa.table({"user_id": ["u"], "timestamp": [1]}), tmp_path / "short.parquet")
    with pytest.raises(DataError, match="column 'item_id': missing required column"):
        load_interactions(tmp_path / "short.parquet")
    pq.write_table(pa.table({"user_id": ["u"], "item_id": ["a"], "timestamp": [1], "rating": [3]}), tmp_path / "extra.parquet")
    with pytest.raises(DataError, match="column 'rating': unknown column"):
        load_interactions(tmp_path / "extra.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_interactions(tmp_path / "junk.parquet")
    with pytest.raises(DataError, match="file not found"):
        load_interactions(tmp_path / "missing.parquet")


def test_select_keeps_codes_and_the_split_ignores_unused_ids():
    from export.data.contract import Dataset, Item
    from export.data.split import leave_last_out

    inter = Interactions.from_rows([("gone", "a", 1, "play", None), ("u", "a", 2, "play", None), ("u", "b", 3, "play", None)])
    kept = inter.select(np.array([False, True, True]))
    assert kept.user_vocab.tolist() == ["gone", "u"] and kept.user_ids.tolist() == ["u", "u"]
    split = leave_last_out(Dataset([Item("a", "A"), Item("b", "B")], kept))
    assert split.user_ids == ["u"] and split.test_items.tolist() == [1]


def test_ragged_is_a_sequence_of_views():
    r = Ragged(np.arange(6), np.array([0, 2, 2, 6]))
    assert len(r) == 3 and [x.tolist() for x in r] == [[0, 1], [], [2, 3, 4, 5]]
    assert r[-1].tolist() == [2, 3, 4, 5] and r[1].tolist() == [] and [x.tolist() for x in r[:2]] == [[0, 1], []]
    assert np.concatenate(r).tolist() == list(range(6))
    with pytest.raises(IndexError):
        r[3]


def test_the_tiny_catalogue_splits_the_same_from_csv_and_parquet(tmp_path):
    from export.data.contract import load_dataset
    from export.data.split import leave_last_out
    from tests.conftest import make_tiny_catalogue

    inter_csv, items_csv, media = make_tiny_catalogue(tmp_path / "tiny")
    a = load_dataset(inter_csv, items_csv, media)
    columnar.write_parquet_interactions(tmp_path / "log.parquet", a.interactions)
    b = load_dataset(tmp_path / "log.parquet", items_csv, media)
    sa, sb = leave_last_out(a), leave_last_out(b)
    assert sa.user_ids == sb.user_ids and (sa.train != sb.train).nnz == 0
    assert sa.test_items.tolist() == sb.test_items.tolist()
    assert [s.tolist() for s in sa.train_sequences] == [s.tolist() for s in sb.train_sequences]
    assert [s.tolist() for s in sa.negatives] == [s.tolist() for s in sb.negatives]


def test_scale_generator_writes_a_valid_deterministic_log(tmp_path):
    from export.data.contract import load_dataset
    from export.data.split import leave_last_out
    from export.data.synthetic.scale import generate_scale

    a = generate_scale(tmp_path / "a", n_users=300, n_items=500, n_events=6000, seed=3, fmt="parquet")
    b = generate_scale(tmp_path / "b", n_users=300, n_items=500, n_events=6000, seed=3, fmt="csv")
    da, db = load_dataset(a.interactions, a.items_csv), load_dataset(b.interactions, b.items_csv)
    _same(da.interactions, db.interactions)  # same seed: the same log in either format
    inter = da.interactions
    assert len(inter) == 6000 and len(da.items) == 500
    assert np.all(np.diff(inter.timestamps) >= 0)  # one chronological log
    assert np.bincount(inter.user_codes).min() >= 2 and len(np.unique(inter.user_codes)) == 300
    popular = np.bincount(inter.item_codes, minlength=len(inter.item_vocab))
    assert popular.max() > 10 * np.median(popular)  # a long tail, not uniform picks
    assert set(inter.events) <= {"play", "complete", "skip", "like", "dislike"}
    split = leave_last_out(da)
    assert split.n_users == 300 and len(split.test_users) > 250
    with pytest.raises(ValueError, match="2 x users"):
        generate_scale(tmp_path / "c", n_users=10, n_items=5, n_events=10)


def test_demo_data_no_media_cli(tmp_path, capsys):
    from edge.cli import main

    assert main(["demo-data", str(tmp_path / "d"), "--no-media", "--users", "50", "--items", "40", "--events", "400",
                 "--format", "parquet"]) == 0
    assert "400 events" in capsys.readouterr().out and (tmp_path / "d" / "interactions.parquet").is_file()
    assert main(["demo-data", str(tmp_path / "e"), "--events", "400"]) != 0
    assert "--no-media" in capsys.readouterr().err
