"""MovieLens-100K adapter: the real folder when present, malformed copies written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.errors import DataError
from export.data.contract import load_dataset
from export.data.movielens import GENRES, convert_movielens, load_movielens

from tests.conftest import shared_data


@pytest.fixture(scope="module")
def ml100k_dir():
    return shared_data("movielens-100k", "u.data").parent


@pytest.fixture(scope="module")
def ml100k(ml100k_dir):
    return load_movielens(ml100k_dir)


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES)


def _write_folder(folder: Path, data: str, items: list[str] | None = None, genre: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if items is None:
        items = [
            f"1|Toy Story (1995)|01-Jan-1995||http://x|{_flags('Animation', 'Comedy')}",
            f"2|Café Society (1995)|01-Jan-1995||http://y|{_flags('Drama')}",
        ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (folder / "u.data").write_text(data, encoding="latin-1")
    if genre is not None:
        (folder / "u.genre").write_text(genre, encoding="latin-1")
    return folder


def test_loads_all_ratings_users_and_items(ml100k):
    inter = ml100k.interactions
    assert len(inter) == 100_000
    assert len(set(inter.user_ids)) == 943
    assert len(ml100k.items) == 1682
    assert set(inter.item_ids) <= set(ml100k.item_index)
    assert set(inter.events) == {"rate"}
    assert inter.timestamps.dtype == np.int64
    values, counts = np.unique(inter.values, return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist())) == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}


def test_latin1_title_is_decoded(ml100k):
    item = ml100k.items[542]  # u.item line 543
    assert item.item_id == "543"
    assert "Misérables" in item.title


def test_genres_become_tags(ml100k):
    toy_story = ml100k.items[ml100k.item_index["1"]]
    assert toy_story.title == "Toy Story (1995)"
    assert toy_story.tags == ("Animation", "Children's", "Comedy")
    assert toy_story.kind == "video"
    assert toy_story.audio is None and toy_story.frames is None
    assert "01-Jan-1995" in toy_story.description


def test_convert_round_trips_through_load_dataset(ml100k, ml100k_dir, tmp_path):
    inter_csv, items_csv = convert_movielens(ml100k_dir, tmp_path / "out")
    assert inter_csv.parent == items_csv.parent == tmp_path / "out"
    loaded = load_dataset(inter_csv, items_csv)
    assert loaded.items == ml100k.items
    for col in ("user_ids", "item_ids", "timestamps", "events", "values"):
        np.testing.assert_array_equal(getattr(loaded.interactions, col), getattr(ml100k.interactions, col))


def test_small_folder_loads_with_fallback_genres(tmp_path):
    folder = _write_folder(tmp_path / "ml", "7\t2\t4\t881250949\n7\t1\t5\t881250950\n\n")
    ds = load_movielens(folder)
    assert [it.title for it in ds.items] == ["Toy Story (1995)", "Café Society (1995)"]
    assert ds.items[0].tags == ("Animation", "Comedy")
    assert list(ds.interactions.item_ids) == ["2", "1"]
    assert ds.interactions.values.tolist() == [4.0, 5.0]
    assert ds.name == "ml"


def test_genre_names_come_from_u_genre(tmp_path):
    genre = "".join(f"g{i}|{i}\n" for i in range(len(GENRES))) + "\n"
    folder = _write_folder(tmp_path / "ml", "1\t1\t3\t881250949\n", genre=genre)
    assert load_movielens(folder).items[0].tags == ("g3", "g5")  # Animation, Comedy flags


def test_convert_writes_contract_csvs(tmp_path):
    folder = _write_folder(tmp_path / "ml", "7\t2\t4\t881250949\n7\t1\t5\t881250950\n")
    inter_csv, items_csv = convert_movielens(folder, tmp_path / "out")
    loaded = load_dataset(inter_csv, items_csv)
    assert loaded.items == load_movielens(folder).items
    assert loaded.interactions.values.tolist() == [4.0, 5.0]


@pytest.mark.parametrize(
    "data, message",
    [
        ("1\t1\t3\t881250949\n1\t2\t3\n", "expected 4 tab-separated fields"),
        ("1\t1\t3\t881250949\nx\t2\t3\t881250950\n", "not an integer"),
        ("1\t1\t3\t881250949\n1\t2.5\t3\t881250950\n", "not an integer"),
        ("1\t1\t3\t881250949\n1\t9\t3\t881250950\n", "not in u.item"),
        ("1\t1\t3\t881250949\n1\t2\tgood\t881250950\n", "not a number"),
    ],
)
def test_malformed_u_data_names_file_and_line(tmp_path, data, message):
    folder = _write_folder(tmp_path / "ml", data)
    with pytest.raises(DataError, match=r"u\.data, line 2") as exc:
        load_movielens(folder)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("2|Short|01-Jan-1995||http://y|0|1", "expected 24"),
        ("two|Title|01-Jan-1995||http://y|" + _flags("Drama"), "not an integer"),
        ("1|Again|01-Jan-1995||http://y|" + _flags("Drama"), "duplicate item id 1"),
        ("2|Title|01-Jan-1995||http://y|" + _flags("Drama").replace("1", "x"), "genre flag"),
    ],
)
def test_malformed_u_item_names_file_and_line(tmp_path, bad_line, message):
    good = f"1|Toy Story (1995)|01-Jan-1995||http://x|{_flags('Comedy')}"
    folder = _write_folder(tmp_path / "ml", "1\t1\t3\t881250949\n", items=[good, bad_line])
    with pytest.raises(DataError, match=r"u\.item, line 2") as exc:
        load_movielens(folder)
    assert message in str(exc.value)


@pytest.mark.parametrize("missing", ["u.data", "u.item"])
def test_missing_file_is_named(tmp_path, missing):
    folder = _write_folder(tmp_path / "ml", "1\t1\t3\t881250949\n")
    (folder / missing).unlink()
    with pytest.raises(DataError, match=rf"{missing}: file not found"):
        load_movielens(folder)


def test_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_movielens(tmp_path / "nowhere")
