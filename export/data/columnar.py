"""Interaction logs read as columns: CSV through pyarrow's streaming reader, Parquet by batches.

Each batch is validated with vectorised checks (the same rules as the row reader in
:mod:`export.data.contract`) and encoded straight into codes, so a 20M-event log never exists
as Python objects: ids become int32 codes into one vocabulary per column, event names int8
kind codes, and only the distinct ids are Python strings. A CSV batch that fails a check raises
:class:`NotColumnar`; the caller re-reads the file row by row, which names the first bad line
exactly (a CSV record may span lines, so only the row reader knows line numbers). Parquet has
no lines: its errors name the row.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from edge.contract.events import DEFAULT_KIND, EVENT_KINDS
from edge.errors import DataError
from export.data.interactions import _MAX_TS, _MIN_TS, INTERACTION_COLUMNS, INTERACTION_REQUIRED, Interactions, parse_timestamp

PARQUET_SUFFIXES = (".parquet", ".pq")
#: Bytes of CSV text per batch: big enough that per-batch work is amortised, small enough that
#: a batch's Arrow buffers stay a few tens of MB.
BLOCK_BYTES = 16 << 20
_KINDS = pa.array(EVENT_KINDS)


class NotColumnar(Exception):
    """This CSV needs the row reader (for an exact error, or a row shape Arrow refuses)."""


class _BadRow(Exception):
    """A check failed at ``row`` (0-based over the file) in ``column``."""

    def __init__(self, row: int, column: str, message: str) -> None:
        super().__init__(message)
        self.row, self.column, self.message = row, column, message


class _Vocabulary:
    """Distinct strings of one column across batches, in first-seen order."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def encode(self, column: pa.Array) -> np.ndarray:
        """int32 codes for a string column (the dictionary lookup runs once per distinct value)."""
        encoded = pc.dictionary_encode(column)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        index = self.index
        lookup = np.fromiter((index.setdefault(s, len(index)) for s in encoded.dictionary.to_pylist()),
                             dtype=np.int32, count=len(encoded.dictionary))
        return lookup[encoded.indices.to_numpy(zero_copy_only=False)]

    def array(self) -> np.ndarray:
        return np.array(list(self.index), dtype=object)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _strings(column: pa.Array) -> pa.Array:
    """Trimmed text of a column of any Arrow type (nulls become empty strings)."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    return pc.fill_null(pc.utf8_trim_whitespace(column), "")


def _ids(column: pa.Array, name: str, start: int) -> pa.Array:
    text = _strings(column)
    empty = pc.equal(text, "").to_numpy(zero_copy_only=False)
    if empty.any():
        raise _BadRow(start + _first(empty), name, "empty value")
    return text


def _numbers_from_text(text: pa.Array, name: str, start: int, allow_empty: bool) -> np.ndarray:
    """float64 values of a text column (NaN where empty and allowed)."""
    empty = pc.equal(text, "").to_numpy(zero_copy_only=False)
    if empty.any() and not allow_empty:
        raise _BadRow(start + _first(empty), name, "empty value")
    try:
        values = pc.cast(pc.if_else(pc.equal(text, ""), None, text), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _parse_python(text, name, start, allow_empty)
    return values.to_numpy(zero_copy_only=False).astype(np.float64)


def _parse_python(text: pa.Array, name: str, start: int, allow_empty: bool) -> np.ndarray:
    """The slow path for a batch Arrow cannot cast (ISO 8601 timestamps): Python's own parsers,
    once per distinct value."""
    encoded = pc.dictionary_encode(text)
    parsed = []
    for j, raw in enumerate(encoded.dictionary.to_pylist()):
        if raw == "" and allow_empty:
            parsed.append(math.nan)
            continue
        try:
            parsed.append(float(parse_timestamp(raw)) if name == "timestamp" else float(raw))
        except ValueError as exc:
            row = start + _first(encoded.indices.to_numpy(zero_copy_only=False) == j)
            raise _BadRow(row, name, f"cannot parse {raw!r}: {exc}" if name == "timestamp" else f"not a number: {raw!r}") from None
    return np.asarray(parsed, dtype=np.float64)[encoded.indices.to_numpy(zero_copy_only=False)]


def _timestamps(column: pa.Array, start: int) -> np.ndarray:
    if pa.types.is_timestamp(column.type):
        if column.null_count:
            raise _BadRow(start + _first(column.is_null().to_numpy(zero_copy_only=False)), "timestamp", "empty value")
        # Timestamps with a zone are instants; naive ones are taken as UTC, as in the CSV.
        seconds = pc.cast(pc.cast(column, pa.timestamp("s", tz=column.type.tz)), pa.int64())
        values = seconds.to_numpy(zero_copy_only=False).astype(np.float64)
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        if column.null_count:
            raise _BadRow(start + _first(column.is_null().to_numpy(zero_copy_only=False)), "timestamp", "empty value")
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    else:
        values = _numbers_from_text(_strings(column), "timestamp", start, allow_empty=False)
    bad = ~(np.isfinite(values) & (values >= _MIN_TS) & (values < _MAX_TS))
    if bad.any():
        row = _first(bad)
        raise _BadRow(start + row, "timestamp", f"{values[row]!r} is outside 1970..2100 (expected Unix seconds or ISO 8601)")
    return values.astype(np.int64)  # truncation, as int() in parse_timestamp


def _kinds(column: pa.Array | None, n: int, start: int) -> np.ndarray:
    if column is None:
        return np.full(n, EVENT_KINDS.index(DEFAULT_KIND) + 1, dtype=np.int8)
    text = _strings(column)
    text = pc.if_else(pc.equal(text, ""), DEFAULT_KIND, text)
    index = pc.index_in(text, value_set=_KINDS)
    unknown = index.is_null().to_numpy(zero_copy_only=False)
    if unknown.any():
        row = _first(unknown)
        raise _BadRow(start + row, "event", f"unknown event kind {text[row].as_py()!r}; expected one of {list(EVENT_KINDS)}")
    return (index.to_numpy(zero_copy_only=False) + 1).astype(np.int8)


def _values(column: pa.Array | None, n: int, start: int) -> np.ndarray:
    if column is None:
        return np.full(n, np.nan, dtype=np.float32)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)  # nulls are NaN
        present = ~column.is_null().to_numpy(zero_copy_only=False)
    else:
        text = _strings(column)
        values = _numbers_from_text(text, "value", start, allow_empty=True)
        present = pc.not_equal(text, "").to_numpy(zero_copy_only=False)
    bad = present & ~np.isfinite(values)
    if bad.any():
        row = _first(bad)
        raise _BadRow(start + row, "value", f"not a finite number: {values[row]!r}")
    return values.astype(np.float32)


def _encode(batches: Iterator[pa.RecordBatch], known_items: set[str] | None) -> Interactions:
    users, items = _Vocabulary(), _Vocabulary()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("u", "i", "t", "k", "v")}
    start = 0
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        names = batch.schema.names
        col = {c: batch.column(names.index(c)) if c in names else None for c in INTERACTION_COLUMNS}
        user_text = _ids(col["user_id"], "user_id", start)
        item_text = _ids(col["item_id"], "item_id", start)
        parts["t"].append(_timestamps(col["timestamp"], start))
        parts["k"].append(_kinds(col["event"], n, start))
        parts["v"].append(_values(col["value"], n, start))
        parts["u"].append(users.encode(user_text))
        before = len(items.index)
        codes = items.encode(item_text)
        if known_items is not None and len(items.index) > before:
            new = list(items.index)[before:]
            missing = [i for i in new if i not in known_items]
            if missing:
                row = _first(codes == items.index[missing[0]])
                raise _BadRow(start + row, "item_id", f"item {missing[0]!r} is not in the catalogue")
        parts["i"].append(codes)
        start += n
    dtypes = {"u": np.int32, "i": np.int32, "t": np.int64, "k": np.int8, "v": np.float32}
    cols = {k: np.concatenate(v) if v else np.zeros(0, dtypes[k]) for k, v in parts.items()}
    return Interactions(users.array(), cols["u"], items.array(), cols["i"], cols["t"], cols["k"], cols["v"])


def read_csv_interactions(path: Path, known_items: set[str] | None) -> Interactions:
    """The columnar CSV reader (header already checked by the caller).

    :raises NotColumnar: the file needs the row reader (any check failed, or Arrow refused a row).
    """
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
            # Every column as text: the checks, not Arrow's type inference, decide what is valid.
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in INTERACTION_COLUMNS},
                                                  strings_can_be_null=False, quoted_strings_can_be_null=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
        )
        with reader:
            return _encode(iter(reader), known_items)
    except (_BadRow, pa.ArrowException, UnicodeDecodeError):
        raise NotColumnar from None


def read_parquet_interactions(path: Path, known_items: set[str] | None) -> Interactions:
    """Read and validate a Parquet interaction log batch by batch.

    :raises DataError: naming the file, the 1-based data row and the column.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    names = handle.schema_arrow.names
    missing = [c for c in INTERACTION_REQUIRED if c not in names]
    if missing:
        raise DataError(f"{path}, column '{missing[0]}': missing required column; the file has {names}, "
                        f"expected at least {list(INTERACTION_REQUIRED)}")
    unknown = [c for c in names if c not in INTERACTION_COLUMNS]
    if unknown:
        raise DataError(f"{path}, column '{unknown[0]}': unknown column; allowed columns are {list(INTERACTION_COLUMNS)}")
    try:
        return _encode(handle.iter_batches(batch_size=1 << 20), known_items)
    except _BadRow as bad:
        raise DataError(f"{path}, row {bad.row + 1}, column '{bad.column}': {bad.message}") from None
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot read the Parquet data ({exc})") from None


def _write_tables(path: str | Path, tables: Iterator[pa.Table], open_writer: Callable[[Any, pa.Schema], Any]) -> None:
    """Write Arrow tables through one writer into ``path``, atomically."""
    from edge.atomic import atomic_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as fh:
        writer = None
        for table in tables:
            if writer is None:
                writer = open_writer(fh, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()


def write_parquet_interactions(path: str | Path, inter: Interactions, rows_per_group: int = 1 << 20) -> None:
    """Write an interaction log as Parquet (ids as dictionary-encoded strings), atomically."""
    _write_tables(path, _arrow_chunks(inter, rows_per_group), pq.ParquetWriter)


def _as_text(table: pa.Table) -> pa.Table:
    return table.cast(pa.schema([(n, pa.string() if n in ("user_id", "item_id", "event") else table.schema.field(n).type)
                                 for n in table.schema.names]))


def write_csv_interactions(path: str | Path, inter: Interactions, rows_per_group: int = 1 << 20) -> None:
    """Write ``interactions.csv`` through pyarrow's CSV writer, batch by batch, atomically."""
    _write_tables(path, (_as_text(t) for t in _arrow_chunks(inter, rows_per_group)), pacsv.CSVWriter)


def _arrow_chunks(inter: Interactions, rows_per_group: int) -> Iterator[pa.Table]:
    """The log as Arrow tables of ``rows_per_group`` rows (ids dictionary-encoded, NaN values null)."""
    kinds = pa.array(("",) + EVENT_KINDS)
    users = pa.array(list(inter.user_vocab), pa.string())
    items = pa.array(list(inter.item_vocab), pa.string())
    for lo in range(0, max(len(inter), 1), rows_per_group):
        sl = slice(lo, lo + rows_per_group)
        values = inter.values[sl]
        yield pa.table({
            "user_id": pa.DictionaryArray.from_arrays(pa.array(inter.user_codes[sl]), users),
            "item_id": pa.DictionaryArray.from_arrays(pa.array(inter.item_codes[sl]), items),
            "timestamp": pa.array(inter.timestamps[sl], pa.int64()),
            "event": pa.DictionaryArray.from_arrays(pa.array(inter.kinds[sl].astype(np.int32)), kinds),
            "value": pa.array(values, pa.float32(), mask=np.isnan(values)),
        })

