"""The amazon-sports adapter: a synthetic file in the release's format, the real file when present,
and the CLI's --amazon option."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.errors import DataError
from export.data.amazon import ATTRIBUTES_FILE, BASE_TIMESTAMP, INTERACTIONS_FILE, TITLE, load_amazon
from export.data.split import leave_last_out

from tests.conftest import shared_data

LINES = ["1 5 3 9 12", "2 3 5", "7 12 9 3 5 1", "3 9 5"]
ATTRIBUTES = {"1": [4, 2], "3": [2, 2, 7], "5": [], "9": [11], "12": [4], "99": [1]}


def write_folder(root, lines=LINES, attributes=ATTRIBUTES):
    root.mkdir(parents=True, exist_ok=True)
    (root / INTERACTIONS_FILE).write_text("\n".join(lines) + "\n", encoding="ascii")
    if attributes is not None:
        (root / ATTRIBUTES_FILE).write_text(json.dumps(attributes), encoding="utf-8")
    return root


def test_a_small_file_becomes_the_contract(tmp_path):
    ds = load_amazon(write_folder(tmp_path / "amazon-sports"))
    assert ds.name == "amazon-sports" and ds.media_root is None
    # Catalogue: every item named in a line, by integer id; tags from the attributes (repeats
    # dropped, file order); items without attributes have none; "99" is named by no user.
    assert [it.item_id for it in ds.items] == ["1", "3", "5", "9", "12"]
    assert {it.item_id: it.tags for it in ds.items} == {"1": ("4", "2"), "3": ("2", "7"), "5": (), "9": ("11",), "12": ("4",)}
    assert {it.title for it in ds.items} == {TITLE} and {it.kind for it in ds.items} == {"video"}
    assert all(it.description == "" and it.audio is None and it.frames is None for it in ds.items)
    inter = ds.interactions
    assert len(inter) == sum(len(line.split()) - 1 for line in LINES)
    assert set(inter.events) == {"rate"} and np.isnan(inter.values).all()
    for line in LINES:
        user, *items = line.split()
        mine = inter.user_ids == user
        assert inter.item_ids[mine].tolist() == items
        assert inter.timestamps[mine].tolist() == [BASE_TIMESTAMP + p for p in range(len(items))]


def test_the_split_keeps_the_line_order(tmp_path):
    split = leave_last_out(load_amazon(write_folder(tmp_path / "a")))
    for line in LINES:
        user, *items = line.split()
        u = split.user_ids.index(user)
        assert [split.item_ids[i] for i in split.train_sequences[u]] == items[:-1]
        assert split.item_ids[split.test_items[np.flatnonzero(split.test_users == u)[0]]] == items[-1]


def test_limit_users_keeps_the_first_lines_and_their_items(tmp_path):
    ds = load_amazon(write_folder(tmp_path / "a"), limit_users=2)
    assert sorted(set(ds.interactions.user_ids)) == ["1", "2"]
    assert [it.item_id for it in ds.items] == ["3", "5", "9", "12"]
    with pytest.raises(ValueError, match="limit_users"):
        load_amazon(tmp_path / "a", limit_users=0)


def test_the_attributes_file_is_optional(tmp_path):
    ds = load_amazon(write_folder(tmp_path / "a", attributes=None))
    assert all(it.tags == () for it in ds.items)


@pytest.mark.parametrize(
    "lines, attributes, match",
    [
        (["1 2 3", "2 4 x5"], ATTRIBUTES, r"line 2: 'x5' is not an integer"),
        (["1 2 3", "2 4 -5"], ATTRIBUTES, r"line 2: '-5' is not an integer"),
        (["1 2 3", "1 4 5"], ATTRIBUTES, r"line 2: duplicate user 1 \(first on line 1\)"),
        ([""], ATTRIBUTES, "no users"),
        (["1 2 3"], {"2": "brand"}, "expected a list of integer attribute ids"),
    ],
)
def test_bad_files_raise_data_errors_naming_file_and_line(tmp_path, lines, attributes, match):
    folder = write_folder(tmp_path / "a", lines, attributes)
    with pytest.raises(DataError, match=match):
        load_amazon(folder)


def test_a_missing_folder_or_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_amazon(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="file not found"):
        load_amazon(tmp_path / "empty")


def test_the_cli_reads_an_amazon_folder(tmp_path):
    from edge.cli import build_parser
    from export.cli import _load

    folder = write_folder(tmp_path / "a")
    ds = _load(build_parser().parse_args(["eval", "--amazon", str(folder)]))
    assert len(ds.interactions) == 13
    with pytest.raises(DataError, match="not both"):
        _load(build_parser().parse_args(["eval", "--amazon", str(folder), "--movielens", str(folder)]))


def test_the_real_file_has_the_published_counts():
    ds = load_amazon(shared_data("amazon-sports"))
    assert len(set(ds.interactions.user_ids.tolist())) == 35_598
    assert len(ds.items) == 18_357
    assert len(ds.interactions) == 296_337
    assert all(it.tags for it in ds.items)  # every item has attributes
    split = leave_last_out(ds)
    assert len(split.test_users) == 35_598  # 5-core: every user has a target
