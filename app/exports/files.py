"""The files of a clue batch: the CSV, the GeoJSON and the ZIP that carries them with the photos.

Pure and streaming: rows come from an iterator (a server-side cursor) and go out in small
encoded chunks, photos are copied into the ZIP in chunks, so memory stays flat whatever the
number of rows or photos. No Flask, no database. Files are created 0640 (app/core/private_files).

Hashing: `HashingWriter` hashes and counts what goes through it, for files written once from
start to end (CSV, GeoJSON, a ZIP member). It has `write`, `tell` and `flush` but no `seek`:
`zipfile` accepts such a stream (it then writes "data descriptors" after each member), yet
`write_zip` writes to a real, seekable file instead, so that each member's local header carries
its own CRC and sizes, which simple and streaming unzippers need (Java's ZipInputStream, for
one, refuses a stored member with a data descriptor). zipfile goes back over those headers,
which a running hash cannot follow, so the finished archive is hashed afterwards with
`sha256_file` (one sequential read of a file that was just written). The members' own hashes,
which go into the manifest, are taken while they are streamed in, so nothing is read twice.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import decimal
import hashlib
import io
import math
import os
import re
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import orjson

from app.core import private_files
from app.core.i18n import N_

TIMEZONE = ZoneInfo("Asia/Shanghai")
MANIFEST_NAME = "manifest.json"
CHUNK_SIZE = 1024 * 1024

CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tip_id", "Identifier of the tip (UUID)."),
    ("code", "Short follow-up code of the tip, as the tipster knows it."),
    ("category", "Category key, e.g. `theft`."),
    ("category_name", "Category name in Chinese, as shown to users."),
    ("status", "Workflow status of the tip when the batch was frozen."),
    ("priority", "Triage priority when the batch was frozen."),
    ("created_at", "When the tip was submitted: ISO 8601, Asia/Shanghai time (+08:00)."),
    ("occurred_at", "When the tipster says it happened: ISO 8601, +08:00; empty if unknown."),
    ("lon", "Longitude, WGS 84 degrees, 7 decimals at most; empty if no location."),
    ("lat", "Latitude, WGS 84 degrees, 7 decimals at most; empty if no location."),
    ("accuracy_m", "Stated accuracy of the location in metres; empty if unknown."),
    ("address", "Address or place description given with the tip."),
    ("district", "District (区) containing the location."),
    ("subdistrict", "Subdistrict (街道) containing the location."),
    ("community", "Community (社区) containing the location."),
    ("grid_cell", "Grid cell (网格) containing the location."),
    ("description", "What the tipster wrote."),
    ("anonymous", "`true` if the tip was sent anonymously, else `false`."),
    ("reporter_name", "Tipster's name; empty unless the batch may disclose it."),
    ("reporter_phone", "Tipster's phone number; empty unless the batch may disclose it."),
    ("photo_count", "Number of photos of the tip in this batch."),
    ("photos", "The photos' paths inside the ZIP, `;`-separated: photos/<tip_id>/<media_id>.jpg."),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in CSV_COLUMNS)
# The header row people read (the batch's language); the GeoJSON keeps the names above.
CSV_HEADINGS: dict[str, str] = {
    "tip_id": N_("Tip ID"),
    "code": N_("Tip code"),
    "category": N_("Category key"),
    "category_name": N_("Category"),
    "status": N_("Status"),
    "priority": N_("Priority"),
    "created_at": N_("Submitted at"),
    "occurred_at": N_("Occurred at"),
    "lon": N_("Longitude"),
    "lat": N_("Latitude"),
    "accuracy_m": N_("Accuracy (m)"),
    "address": N_("Address"),
    "district": N_("District"),
    "subdistrict": N_("Subdistrict"),
    "community": N_("Community"),
    "grid_cell": N_("Grid cell"),
    "description": N_("Description"),
    "anonymous": N_("Anonymous"),
    "reporter_name": N_("Reporter name"),
    "reporter_phone": N_("Reporter phone"),
    "photo_count": N_("Photo count"),
    "photos": N_("Photos"),
}
NUMERIC_COLUMNS = frozenset({"lon", "lat", "accuracy_m", "photo_count"})
_COORDINATES = frozenset({"lon", "lat"})
COORDINATE_DECIMALS = 7

# Spreadsheets read a cell starting with one of these as a formula (OWASP "CSV Injection").
# The full-width forms are added defensively: IMEs for Chinese type them easily.
_FORMULA_TRIGGERS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_FLUSH_CHARS = 256 * 1024  # encode and write the text buffer once it holds this much

# Extensions of already-compressed files, stored as they are rather than deflated again.
STORED_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".heif", ".avif", ".mp4", ".mov",
     ".zip", ".gz", ".bz2", ".xz", ".7z"}
)  # fmt: skip


# -- values ------------------------------------------------------------------------------------


def format_datetime(value: dt.datetime) -> str:
    """ISO 8601 with offset in Asia/Shanghai time, to the second: 2026-11-22T13:05:00+08:00."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: its time zone is unknown")
    return value.astimezone(TIMEZONE).isoformat(timespec="seconds")


def _number(column: str, value: Any) -> int | float | None:
    """A numeric cell as a finite int or float (None stays None); anything else is an error,
    never text, since numeric cells are written without the formula guard."""
    kind = type(value)
    if kind is int:
        return value
    if kind is float and math.isfinite(value):
        return round(value, COORDINATE_DECIMALS) if column in _COORDINATES else value
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(f"{column}: a boolean is not a number")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float | decimal.Decimal | str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{column}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{column}: {value!r} is not a finite number")
        if column in _COORDINATES:
            return round(number, COORDINATE_DECIMALS)
        if number.is_integer() and not isinstance(value, float):
            return int(number)
        return number
    raise TypeError(f"{column}: {type(value).__name__} is not a number")


def _format_number(number: int | float | None) -> str:
    if number is None:
        return ""
    text = repr(number)
    if "e" in text:  # no scientific notation in a spreadsheet cell
        text = f"{number:.12f}".rstrip("0").rstrip(".")
    return text


def _photo_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return value.split(";")
    return [str(path) for path in value]


def _plain(value: Any) -> Any:
    """A value as text, number, bool or None (JSON-ready)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot export a value of type {type(value).__name__}")


def escape_formula(text: str) -> str:
    """Prefix `'` to text a spreadsheet would run as a formula."""
    return "'" + text if text[:1] in _FORMULA_TRIGGERS else text


# Each column's kind: text (formula-guarded in the CSV), number, or the photos list.
_TEXT, _NUMBER, _PHOTOS = 0, 1, 2
_PLAN = tuple(
    (name, _NUMBER if name in NUMERIC_COLUMNS else _PHOTOS if name == "photos" else _TEXT)
    for name in COLUMN_NAMES
)
_KINDS = tuple(kind for _, kind in _PLAN)


def _values(row: dict) -> list:
    """The row's values in column order, checked and made plain: text columns hold str, bool
    or None (datetimes formatted), numeric ones int, float or None, `photos` a list of str."""
    get = row.get
    values: list = []
    append = values.append
    for column, kind in _PLAN:
        value = get(column)
        if kind == _TEXT:
            kind_of = type(value)
            if kind_of is str or value is None or kind_of is bool:
                append(value)
            elif kind_of is dt.datetime:
                append(format_datetime(value))
            else:
                append(_plain(value))
        elif kind == _NUMBER:
            append(_number(column, value))
        else:
            append(_photo_list(value))
    return values


def _csv_cells(values: list) -> list[str]:
    cells: list[str] = []
    append = cells.append
    for value, kind in zip(values, _KINDS, strict=True):
        if value is None:
            append("")
        elif kind == _TEXT:
            if value is True or value is False:
                append("true" if value else "false")
            else:
                text = value if type(value) is str else str(value)
                append("'" + text if text[:1] in _FORMULA_TRIGGERS else text)
        elif kind == _NUMBER:
            append(_format_number(value))
        else:
            text = ";".join(value)
            append("'" + text if text[:1] in _FORMULA_TRIGGERS else text)
    return cells


def _feature(values: list) -> dict:
    properties = dict(zip(COLUMN_NAMES, values, strict=True))
    lon = properties.pop("lon")
    lat = properties.pop("lat")
    geometry = None
    if lon is not None and lat is not None:
        geometry = {"type": "Point", "coordinates": [lon, lat]}
    tip_id = properties["tip_id"]
    if tip_id is None:
        return {"type": "Feature", "geometry": geometry, "properties": properties}
    return {"type": "Feature", "id": tip_id, "geometry": geometry, "properties": properties}


# -- CSV and GeoJSON ---------------------------------------------------------------------------


class _CsvSink:
    def __init__(self, out: BinaryIO, header: Sequence[str] = COLUMN_NAMES) -> None:
        self.out = out
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")
        out.write(b"\xef\xbb\xbf")
        self.writer.writerow(header)

    def add(self, values: list) -> None:
        self.writer.writerow(_csv_cells(values))
        if self.buffer.tell() >= _FLUSH_CHARS:
            self.out.write(self.buffer.getvalue().encode("utf-8"))
            self.buffer.seek(0)
            self.buffer.truncate()

    def close(self) -> None:
        self.out.write(self.buffer.getvalue().encode("utf-8"))


class _GeoJsonSink:
    """Features written by orjson straight to UTF-8 bytes (a third of the pass's time went to
    the standard encoder; bench_clue_batch). The same JSON as the standard encoder with
    `ensure_ascii=False, separators=(",", ":")`, byte for byte but for exponents (1e-7, not
    1e-07; never for coordinates, rounded to 7 decimals): the values are checked before
    (finite numbers, plain types), so nothing depends on orjson's choices for NaN or types."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.parts = [b'{"type":"FeatureCollection","features":[']
        self.size = 0
        self.separator = b"\n"

    def add(self, values: list) -> None:
        data = orjson.dumps(_feature(values))
        self.parts.append(self.separator)
        self.parts.append(data)
        self.separator = b",\n"
        self.size += len(data)
        if self.size >= _FLUSH_CHARS:
            self.out.write(b"".join(self.parts))
            self.parts.clear()
            self.size = 0

    def close(self) -> None:
        self.parts.append(b"\n]}\n")
        self.out.write(b"".join(self.parts))


def _write(rows: Iterable[dict], sinks: list) -> int:
    count = 0
    for row in rows:
        values = _values(row)
        for sink in sinks:
            sink.add(values)
        count += 1
    for sink in sinks:
        sink.close()
    return count


def write_csv(rows: Iterable[dict], out: BinaryIO, header: Sequence[str] = COLUMN_NAMES) -> int:
    """Write `rows` as CSV (UTF-8 with BOM, CRLF, `header` (the column names unless given),
    one row per tip, columns of `CSV_COLUMNS`, formulas defused) to the binary stream `out`, in
    small chunks; return the number of rows."""
    return _write(rows, [_CsvSink(out, header)])


def write_geojson(rows: Iterable[dict], out: BinaryIO) -> int:
    """Write `rows` as an RFC 7946 FeatureCollection (UTF-8, one Feature per line, a Point or a
    null geometry, the other columns as properties, `photos` as a list) to the binary stream
    `out`, feature by feature; return the number of features."""
    return _write(rows, [_GeoJsonSink(out)])


def write_csv_and_geojson(
    rows: Iterable[dict],
    csv_out: BinaryIO,
    geojson_out: BinaryIO,
    csv_header: Sequence[str] = COLUMN_NAMES,
) -> int:
    """Both files in one pass over `rows` (one database cursor), each row converted once; the
    same bytes as `write_csv` and `write_geojson`. Returns the number of rows."""
    return _write(rows, [_CsvSink(csv_out, csv_header), _GeoJsonSink(geojson_out)])


# -- hashing -----------------------------------------------------------------------------------


class HashingWriter:
    """Wraps a binary stream: whatever is written goes through, counted and SHA-256-hashed.

    Write-only and forward-only (`write`, `tell`, `flush`; no `seek`). Closing it does not close
    the wrapped stream."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        self.raw.write(view)
        self._hash.update(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def entry(self, name: str) -> dict:
        """The manifest's description of what was written: name, size and sha256."""
        return {"name": name, "size": self.size, "sha256": self.hexdigest()}


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """SHA-256 (hex) of bytes in memory."""
    return hashlib.sha256(data).hexdigest()


def describe(path: str | os.PathLike, name: str | None = None) -> dict:
    """A file's manifest entry: `{"name", "size", "sha256"}`, named after the file unless
    `name` is given."""
    path = Path(path)
    return {"name": name or path.name, "size": path.stat().st_size, "sha256": sha256_file(path)}


# -- ZIP ---------------------------------------------------------------------------------------

_UNSAFE_CHARACTERS = re.compile(r'[\x00-\x1f\x7f\\:*?"<>|]')

Source = Path | bytes | Callable[[], Iterable[bytes]]


def check_member_name(name: str) -> str:
    """Return `name` if it is a safe relative path for a ZIP member, else raise ValueError:
    no absolute path, no `.` or `..` or empty part, no backslash, drive letter or control
    character, nor characters that Windows cannot put in a file name."""
    if not isinstance(name, str) or not name:
        raise ValueError("a member needs a name")
    if name.startswith("/") or _UNSAFE_CHARACTERS.search(name):
        raise ValueError(f"unsafe member name {name!r}")
    for part in name.split("/"):
        if part in ("", ".", "..") or part != part.rstrip(" ."):
            raise ValueError(f"unsafe member name {name!r}")
    return name


@dataclass(frozen=True)
class ZipSummary:
    """What `write_zip` made: the archive's size and SHA-256, its members (manifest excluded)
    as the manifest lists them, and the bytes of its `manifest.json`."""

    path: Path
    size: int
    sha256: str
    files: list[dict]
    manifest: bytes


class ClueZipWriter:
    """Builds a clue-batch ZIP member by member, then `finish` adds `manifest.json` last.

    Written to `<path>.part` (mode 0640 from its creation) and renamed to `path` on success
    only, so a half-written archive never carries the final name; on failure (or `abort`) the
    partial file is removed."""

    def __init__(self, path: str | os.PathLike, *, date_time: dt.datetime | None = None) -> None:
        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + ".part")
        moment = (date_time or dt.datetime.now(TIMEZONE)).astimezone(TIMEZONE)
        self._date_time = (max(moment.year, 1980), *moment.timetuple()[1:6])
        # Created 0640 (the archive may name consenting reporters); zipfile would make it 0644.
        self._file = private_files.open_new(self._partial)
        self._zip = zipfile.ZipFile(self._file, "w", zipfile.ZIP_DEFLATED)
        self._seen: set[str] = set()
        self.files: list[dict] = []

    def __enter__(self) -> ClueZipWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self._zip.fp is not None:
            self.abort()

    def _info(self, name: str) -> zipfile.ZipInfo:
        check_member_name(name)
        if name == MANIFEST_NAME:
            raise ValueError(f"{MANIFEST_NAME} is written by finish()")
        folded = name.casefold()
        if folded in self._seen:
            raise ValueError(f"duplicate member name {name!r}")
        self._seen.add(folded)
        info = zipfile.ZipInfo(name, self._date_time)
        stored = Path(name).suffix.lower() in STORED_SUFFIXES
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    @contextlib.contextmanager
    def open(self, name: str, *, size: int | None = None) -> Iterator[HashingWriter]:
        """A member to write into, e.g. `with z.open("tips.csv") as f: write_csv(rows, f)`."""
        info = self._info(name)
        if size is not None:
            info.file_size = size  # lets zipfile leave out ZIP64 fields for small members
        with self._zip.open(info, "w", force_zip64=size is None) as member:
            writer = HashingWriter(member)
            yield writer
        self.files.append(writer.entry(name))

    def add(self, name: str, source: Source) -> dict:
        """Add a member from a file path, bytes, or a function returning an iterable of chunks;
        return its manifest entry."""
        if isinstance(source, bytes):
            with self.open(name, size=len(source)) as writer:
                writer.write(source)
        elif isinstance(source, os.PathLike):
            with (
                open(source, "rb") as file,
                self.open(name, size=os.fstat(file.fileno()).st_size) as writer,
            ):
                while chunk := file.read(CHUNK_SIZE):
                    writer.write(chunk)
        elif callable(source):
            with self.open(name) as writer:
                for chunk in source():
                    writer.write(chunk)
        else:
            raise TypeError(f"{name}: unsupported source {type(source).__name__}")
        return self.files[-1]

    def finish(self, manifest: bytes | Callable[[list[dict]], bytes]) -> ZipSummary:
        """Add `manifest.json` last (bytes, or a function of the members' entries returning
        them), close, rename into place, hash the archive."""
        data = manifest(list(self.files)) if callable(manifest) else manifest
        if not isinstance(data, bytes):
            raise TypeError("the manifest must be bytes")
        info = zipfile.ZipInfo(MANIFEST_NAME, self._date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self._zip.writestr(info, data)
        self._zip.close()
        self._file.close()
        os.replace(self._partial, self.path)
        return ZipSummary(
            path=self.path,
            size=self.path.stat().st_size,
            sha256=sha256_file(self.path),
            files=list(self.files),
            manifest=data,
        )

    def abort(self) -> None:
        """Close and remove the partial archive."""
        with contextlib.suppress(Exception):  # already failing; the partial file goes anyway
            self._zip.close()
        self._file.close()
        self._partial.unlink(missing_ok=True)


def write_zip(
    path: str | os.PathLike,
    members: Iterable[tuple[str, Source]],
    manifest: bytes | Callable[[list[dict]], bytes],
    *,
    date_time: dt.datetime | None = None,
) -> ZipSummary:
    """Build the ZIP at `path` from `(name, source)` pairs, streamed one after the other, and
    `manifest.json` last. A source is a `Path`, `bytes`, or a function returning an iterable
    of byte chunks. Already-compressed files (`.jpg`, …) are stored, the rest deflated.

    `manifest` is bytes, or a function that receives the members' entries
    (`{"name", "size", "sha256"}`, hashed while streaming) and returns the manifest's bytes,
    e.g. `lambda files: manifest_json(build_manifest(batch, files, key))`."""
    with ClueZipWriter(path, date_time=date_time) as archive:
        for name, source in members:
            archive.add(name, source)
        return archive.finish(manifest)
