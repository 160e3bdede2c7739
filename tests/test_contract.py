"""The data contract: valid files load, bad rows name file, line and column."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edge.errors import DataError
from export.data.contract import (
    Interactions,
    Item,
    load_dataset,
    load_interactions,
    load_items,
    write_interactions,
    write_items,
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_interactions_parse_unix_iso_defaults_and_values(tmp_path):
    p = _write(
        tmp_path / "interactions.csv",
        "user_id,item_id,timestamp,event,value\n"
        "u1,i1,1700000000,complete,0.9\n"
        "u1,i2,2023-11-14T22:13:21Z,,\n"
        "u2,i1,2023-11-14T22:13:21+01:00,rate,4\n",
    )
    inter = load_interactions(p)
    assert len(inter) == 3
    assert inter.timestamps.tolist() == [1700000000, 1700000001, 1700000001 - 3600]
    assert inter.events.tolist() == ["complete", "play", "rate"]
    assert inter.values[0] == pytest.approx(0.9) and math.isnan(inter.values[1]) and inter.values[2] == 4


@pytest.mark.parametrize(
    "body, line, column, words",
    [
        ("user_id,item_id\nu,i\n", 1, "timestamp", "missing required column"),
        ("user_id,item_id,timestamp\nu,i,1700000000\nu,i,yesterday\n", 3, "timestamp", "cannot parse"),
        ("user_id,item_id,timestamp,event\nu,i,1700000000,binge\n", 2, "event", "unknown event kind"),
        ("user_id,item_id,timestamp\nu,,1700000000\n", 2, "item_id", "empty"),
        ("user_id,item_id,timestamp,value\nu,i,1700000000,lots\n", 2, "value", "not a number"),
        ("user_id,item_id,timestamp\nu,i,99999999999\n", 2, "timestamp", "outside"),
        ("user_id,item_id,timestamp,colour\nu,i,1\n", 1, "colour", "unknown column"),
    ],
)
def test_bad_interaction_rows_name_file_line_and_column(tmp_path, body, line, column, words):
    p = _write(tmp_path / "interactions.csv", body)
    with pytest.raises(DataError) as err:
        load_interactions(p)
    msg = str(err.value)
    assert str(p) in msg and f"line {line}" in msg and f"column '{column}'" in msg and words in msg


def test_items_duplicate_id_names_both_lines(tmp_path):
    p = _write(tmp_path / "items.csv", "item_id,title\na,One\nb,Two\na,Three\n")
    with pytest.raises(DataError, match=r"line 4, column 'item_id'.*duplicate item id 'a' \(first on line 2\)"):
        load_items(p)


def test_items_media_missing_or_escaping_root(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "ok.wav").write_bytes(b"x")
    (tmp_path / "secret.wav").write_bytes(b"x")
    (media / "link.wav").symlink_to(tmp_path / "secret.wav")
    cases = [
        ("missing.wav", "not found"),
        ("../secret.wav", "escapes the media root"),
        ("link.wav", "escapes the media root"),
        (str(tmp_path / "secret.wav"), "is absolute"),
    ]
    for rel, words in cases:
        p = _write(tmp_path / "items.csv", f"item_id,title,kind,audio\na,One,audio,ok.wav\nb,Two,audio,{rel}\n")
        with pytest.raises(DataError) as err:
            load_items(p, media)
        assert "line 3, column 'audio'" in str(err.value) and words in str(err.value)
    p = _write(tmp_path / "items.csv", "item_id,title,kind,audio\na,One,audio,ok.wav\n")
    assert load_items(p, media)[0].audio == (media / "ok.wav").resolve()


def test_items_tags_kind_duration(tmp_path):
    p = _write(tmp_path / "items.csv", 'item_id,title,tags,kind,duration_s,description\nx,"Hello, world",news| live ,audio,12.5,Morning news\n')
    (it,) = load_items(p)
    assert it == Item("x", "Hello, world", ("news", "live"), "audio", 12.5, None, None, "Morning news")
    _write(tmp_path / "bad.csv", "item_id,title,kind\nx,T,podcast\n")
    with pytest.raises(DataError, match="line 2, column 'kind'"):
        load_items(tmp_path / "bad.csv")


def test_dataset_rejects_interaction_with_unknown_item(tmp_path):
    _write(tmp_path / "items.csv", "item_id,title\na,One\n")
    _write(tmp_path / "interactions.csv", "user_id,item_id,timestamp\nu,a,1700000000\nu,zz,1700000001\n")
    with pytest.raises(DataError, match=r"line 3, column 'item_id'.*'zz' is not in the catalogue"):
        load_dataset(tmp_path / "interactions.csv", tmp_path / "items.csv")


def test_round_trip_and_atomic_write(tmp_path, monkeypatch):
    media = tmp_path / "m"
    media.mkdir()
    (media / "a.flac").write_bytes(b"x")
    items = [Item("a", "Tïtle, with comma", ("x", "y"), "audio", 3.0, media / "a.flac", None, "d")]
    inter = Interactions.from_rows([("u", "a", 1700000000, "like", None), ("u", "a", 1700000100, "complete", 0.5)])
    write_items(tmp_path / "items.csv", items, media)
    write_interactions(tmp_path / "interactions.csv", inter)
    ds = load_dataset(tmp_path / "interactions.csv", tmp_path / "items.csv", media)
    assert ds.items[0].title == "Tïtle, with comma" and ds.items[0].audio == (media / "a.flac").resolve()
    assert ds.interactions.events.tolist() == ["like", "complete"]
    before = (tmp_path / "interactions.csv").read_bytes()

    # A write that fails midway leaves the old file untouched and no temporary behind.
    import edge.atomic

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(edge.atomic.os, "fsync", boom)
    with pytest.raises(OSError):
        write_interactions(tmp_path / "interactions.csv", Interactions.from_rows([("v", "a", 1, "play", None)]))
    assert (tmp_path / "interactions.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["interactions.csv", "items.csv", "m"]


def test_items_carry_age_rating_and_availability_window(tmp_path):
    from export.data.contract import load_items

    p = tmp_path / "items.csv"
    p.write_text("item_id,title,age_rating,available_from,available_until\n"
                 "a,A,16,2024-01-01T00:00:00Z,1735689600\nb,B,,,\n", encoding="utf-8")
    a, b = load_items(p)
    assert (a.age_rating, a.available_from, a.available_until) == (16, 1704067200, 1735689600)
    assert (b.age_rating, b.available_from, b.available_until) == (None, None, None)
    p.write_text("item_id,title,age_rating\na,A,99\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2, column 'age_rating'"):
        load_items(p)
    p.write_text("item_id,title,available_from,available_until\na,A,1735689600,1704067200\n", encoding="utf-8")
    with pytest.raises(DataError, match="ends before it starts"):
        load_items(p)


def test_items_carry_series_and_episode_numbers_and_bad_ones_are_named(tmp_path):
    from export.data.contract import load_items, write_items

    p = tmp_path / "items.csv"
    p.write_text("item_id,title,series_id,episode\na,A,s1,1\nb,B,s1,2\nc,C,,\nd,D,s2,\n", encoding="utf-8")
    items = load_items(p)
    assert [(it.series_id, it.episode) for it in items] == [("s1", 1), ("s1", 2), (None, None), ("s2", None)]
    write_items(tmp_path / "again.csv", items, tmp_path)
    assert load_items(tmp_path / "again.csv") == items
    for body, match in (("a,A,,3", "needs a series_id"), ("a,A,s1,x", "whole episode number"), ("a,A,s1,-1", "whole episode number"),
                        ("a,A,s1,1\nb,B,s1,1", "line 3, column 'episode'.*already on line 2")):
        p.write_text("item_id,title,series_id,episode\n" + body + "\n", encoding="utf-8")
        with pytest.raises(DataError, match=match):
            load_items(p)
