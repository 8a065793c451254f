"""The clue-batch files: CSV (Excel-safe), GeoJSON, ZIP; streaming with flat memory."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import time
import tracemalloc
import uuid
import zipfile
from pathlib import Path

import pytest

from app.exports import files
from app.exports.files import (
    COLUMN_NAMES,
    CSV_COLUMNS,
    HashingWriter,
    check_member_name,
    sha256_file,
    write_csv,
    write_csv_and_geojson,
    write_geojson,
    write_zip,
)

UTC = dt.UTC
TIP_ID = "0b5b2f2e-5d1a-4d6e-9a43-2f0d6f1c9e01"


def make_row(**overrides) -> dict:
    row = {
        "tip_id": TIP_ID,
        "code": "QF-7K2M",
        "category": "theft",
        "category_name": "盗窃",
        "status": "reviewing",
        "priority": "high",
        "created_at": dt.datetime(2026, 11, 22, 5, 5, tzinfo=UTC),
        "occurred_at": None,
        "lon": 116.3974,
        "lat": 39.9087,
        "accuracy_m": 12.5,
        "address": "北京市东城区东长安街",
        "district": "东城区",
        "subdistrict": "东华门街道",
        "community": "南池子社区",
        "grid_cell": "DC-017",
        "description": "有人在撬电动车的锁，穿黑色外套。",
        "anonymous": True,
        "reporter_name": None,
        "reporter_phone": None,
        "photo_count": 2,
        "photos": [f"photos/{TIP_ID}/a.jpg", f"photos/{TIP_ID}/b.jpg"],
    }
    row.update(overrides)
    return row


def generated_rows(n: int):
    """A generator, as a server-side cursor would give: never a list."""
    created = dt.datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(n):
        tip = str(uuid.UUID(int=i))
        yield make_row(
            tip_id=tip,
            code=f"QF-{i:06d}",
            created_at=created + dt.timedelta(seconds=i),
            occurred_at=created + dt.timedelta(seconds=i - 600),
            lon=None if i % 50 == 0 else 116.0 + i * 1e-6,
            lat=None if i % 50 == 0 else 39.0 + i * 1e-6,
            description=f"第{i}条线索：有人在撬电动车的锁。",
            photo_count=i % 3,
            photos=[f"photos/{tip}/{j}.jpg" for j in range(i % 3)],
        )


def csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# -- CSV -----------------------------------------------------------------------------------------


def test_csv_columns_are_documented_in_order():
    assert COLUMN_NAMES == (
        "tip_id", "code", "category", "category_name", "status", "priority", "created_at",
        "occurred_at", "lon", "lat", "accuracy_m", "address", "district", "subdistrict",
        "community", "grid_cell", "description", "anonymous", "reporter_name", "reporter_phone",
        "photo_count", "photos",
    )  # fmt: skip
    assert all(description for _, description in CSV_COLUMNS)


def test_csv_has_bom_header_crlf_and_round_trips_chinese():
    out = io.BytesIO()
    assert write_csv([make_row(), make_row(code="QF-2")], out) == 2
    data = out.getvalue()
    assert data.startswith(b"\xef\xbb\xbftip_id,code,")
    assert data.split(b"\r\n")[0] == b"\xef\xbb\xbf" + ",".join(COLUMN_NAMES).encode()
    assert data.endswith(b"\r\n") and data.count(b"\r\n") == 3
    rows = csv_rows(data)
    assert [r["code"] for r in rows] == ["QF-7K2M", "QF-2"]
    assert rows[0]["category_name"] == "盗窃"
    assert rows[0]["description"] == "有人在撬电动车的锁，穿黑色外套。"
    assert rows[0]["photos"] == f"photos/{TIP_ID}/a.jpg;photos/{TIP_ID}/b.jpg"
    assert rows[0]["anonymous"] == "true"
    assert [rows[0][c] for c in ("lon", "lat", "accuracy_m")] == ["116.3974", "39.9087", "12.5"]
    assert rows[0]["photo_count"] == "2"


def test_csv_writes_datetimes_in_shanghai_time_and_none_as_empty():
    row = make_row(
        created_at=dt.datetime(2026, 11, 22, 5, 5, tzinfo=UTC),
        occurred_at=dt.datetime(2026, 11, 22, 23, 30, 15, 999, tzinfo=UTC),
        reporter_name=None,
        accuracy_m=None,
        lon=None,
        lat=None,
        photos=None,
        photo_count=0,
    )
    out = io.BytesIO()
    write_csv([row], out)
    (parsed,) = csv_rows(out.getvalue())
    assert parsed["created_at"] == "2026-11-22T13:05:00+08:00"
    assert parsed["occurred_at"] == "2026-11-23T07:30:15+08:00"
    for column in ("reporter_name", "reporter_phone", "accuracy_m", "lon", "lat", "photos"):
        assert parsed[column] == "", column
    assert parsed["photo_count"] == "0"


def test_csv_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="naive"):
        write_csv([make_row(created_at=dt.datetime(2026, 11, 22, 13, 5))], io.BytesIO())


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ('=HYPERLINK("http://evil.example","点我")', '\'=HYPERLINK("http://evil.example","点我")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@x", "'@x"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("＝1+1", "'＝1+1"),
        ("a=1", "a=1"),
        ("普通的描述", "普通的描述"),
        ("'already", "'already"),
    ],
)
def test_csv_defuses_formulas_in_text_cells(text, written):
    out = io.BytesIO()
    write_csv([make_row(description=text, address=text, reporter_name=text)], out)
    (parsed,) = csv_rows(out.getvalue())
    assert parsed["description"] == written
    assert parsed["address"] == written
    assert parsed["reporter_name"] == written


def test_csv_keeps_numeric_columns_as_numbers():
    row = make_row(lon=-70.123456789, lat=-33.45, accuracy_m=decimal.Decimal("8"), photo_count=0)
    out = io.BytesIO()
    write_csv([row], out)
    (parsed,) = csv_rows(out.getvalue())
    assert parsed["lon"] == "-70.1234568"
    assert parsed["lat"] == "-33.45"
    assert parsed["accuracy_m"] == "8"
    assert parsed["photo_count"] == "0"
    # tiny values are not written in scientific notation
    write_csv([make_row(lon=1e-7, lat=-0.0000001)], out := io.BytesIO())
    (parsed,) = csv_rows(out.getvalue())
    assert (parsed["lon"], parsed["lat"]) == ("0.0000001", "-0.0000001")


@pytest.mark.parametrize("value", ["=1+1", "-1+cmd|' /C calc'!A0", True, float("nan"), "abc"])
def test_csv_numeric_columns_refuse_non_numbers(value):
    """A numeric cell is never written unguarded unless it is really a number."""
    with pytest.raises((TypeError, ValueError)):
        write_csv([make_row(accuracy_m=value)], io.BytesIO())


def test_csv_of_no_rows_is_just_the_header():
    out = io.BytesIO()
    assert write_csv(iter(()), out) == 0
    assert out.getvalue() == b"\xef\xbb\xbf" + ",".join(COLUMN_NAMES).encode() + b"\r\n"


def test_csv_writes_in_chunks_as_rows_arrive():
    """The output is written while the rows are still coming, not all at the end."""
    out = io.BytesIO()
    sizes = []

    def rows():
        for row in generated_rows(5000):
            sizes.append(out.tell())
            yield row

    assert write_csv(rows(), out) == 5000
    assert 0 < sizes[-1] < len(out.getvalue())
    assert len(set(sizes)) > 3  # several writes along the way


# -- GeoJSON -------------------------------------------------------------------------------------


def test_geojson_is_a_feature_collection_with_properties():
    rows = [
        make_row(lon=116.397428123456, lat=39.90923456789),
        make_row(tip_id="t2", lon=None, lat=None, photos="", photo_count=0, anonymous=False),
    ]
    out = io.BytesIO()
    assert write_geojson(iter(rows), out) == 2
    data = out.getvalue()
    assert "盗窃".encode() in data  # ensure_ascii=False
    doc = json.loads(data)
    assert doc["type"] == "FeatureCollection"
    first, second = doc["features"]
    assert first["type"] == "Feature" and first["id"] == TIP_ID
    assert first["geometry"] == {"type": "Point", "coordinates": [116.3974281, 39.9092346]}
    props = first["properties"]
    assert "lon" not in props and "lat" not in props
    assert set(props) == set(COLUMN_NAMES) - {"lon", "lat"}
    assert props["created_at"] == "2026-11-22T13:05:00+08:00"
    assert props["category_name"] == "盗窃"
    assert props["accuracy_m"] == 12.5 and props["photo_count"] == 2
    assert props["anonymous"] is True and props["reporter_name"] is None
    assert props["photos"] == [f"photos/{TIP_ID}/a.jpg", f"photos/{TIP_ID}/b.jpg"]
    assert second["geometry"] is None
    assert second["properties"]["photos"] == [] and second["properties"]["anonymous"] is False


def test_geojson_with_one_coordinate_missing_has_no_geometry():
    out = io.BytesIO()
    write_geojson([make_row(lon=116.4, lat=None)], out)
    assert json.loads(out.getvalue())["features"][0]["geometry"] is None


def test_geojson_of_no_rows_is_an_empty_collection():
    out = io.BytesIO()
    assert write_geojson(iter(()), out) == 0
    assert json.loads(out.getvalue()) == {"type": "FeatureCollection", "features": []}


def test_geojson_keeps_formula_text_as_it_is():
    out = io.BytesIO()
    write_geojson([make_row(description="=1+1")], out)
    assert json.loads(out.getvalue())["features"][0]["properties"]["description"] == "=1+1"


def test_geojson_streams_100k_rows_in_flat_memory(tmp_path):
    path = tmp_path / "tips.geojson"
    tracemalloc.start()
    try:
        with open(path, "wb") as out:
            count = write_geojson(generated_rows(100_000), out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert path.stat().st_size > 40 * 1024 * 1024  # far more than what was held at once
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    with open(path, encoding="utf-8") as file:  # one feature a line: check them one by one
        lines = iter(file)
        assert next(lines) == '{"type":"FeatureCollection","features":[\n'
        features = 0
        for line in lines:
            if line == "]}\n":
                break
            feature = json.loads(line.removesuffix("\n").removesuffix(","))
            assert feature["properties"]["code"] == f"QF-{features:06d}"
            features += 1
        assert features == 100_000
        assert next(lines, None) is None


def test_csv_and_geojson_in_one_pass_stream_in_flat_memory(tmp_path):
    tracemalloc.start()
    try:
        with open(tmp_path / "t.csv", "wb") as csv_out, open(tmp_path / "t.json", "wb") as geo:
            count = write_csv_and_geojson(generated_rows(100_000), csv_out, geo)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert (tmp_path / "t.csv").stat().st_size > 20 * 1024 * 1024
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    with open(tmp_path / "t.csv", encoding="utf-8-sig", newline="") as file:
        assert sum(1 for _ in csv.reader(file)) == 100_001


def test_one_pass_writes_the_same_files_as_the_two_writers():
    rows = list(generated_rows(2000))
    csv_out, geojson_out, both_csv, both_geojson = (io.BytesIO() for _ in range(4))
    assert write_csv(iter(rows), csv_out) == write_geojson(iter(rows), geojson_out) == 2000
    assert write_csv_and_geojson(iter(rows), both_csv, both_geojson) == 2000
    assert both_csv.getvalue() == csv_out.getvalue()
    assert both_geojson.getvalue() == geojson_out.getvalue()


def test_other_value_types_are_written_plainly():
    row = make_row(
        tip_id=uuid.UUID(TIP_ID),
        priority=-1,
        accuracy_m=decimal.Decimal("7.25"),
        occurred_at=dt.date(2026, 11, 21),
    )
    csv_out, geojson_out = io.BytesIO(), io.BytesIO()
    write_csv_and_geojson([row], csv_out, geojson_out)
    (parsed,) = csv_rows(csv_out.getvalue())
    assert parsed["tip_id"] == TIP_ID
    assert parsed["priority"] == "'-1"  # a text column: guarded even when given a number
    assert parsed["accuracy_m"] == "7.25"
    assert parsed["occurred_at"] == "2026-11-21"
    feature = json.loads(geojson_out.getvalue())["features"][0]
    assert feature["id"] == TIP_ID
    assert feature["properties"]["priority"] == -1
    assert feature["properties"]["accuracy_m"] == 7.25
    with pytest.raises(TypeError):
        write_csv([make_row(address=object())], io.BytesIO())


def test_throughput_of_csv_and_geojson(tmp_path):
    """Not a timed assertion: prints rows/s for CSV + GeoJSON of the same 100,000 rows."""
    n = 100_000
    rows = list(generated_rows(n))  # so the generator's own cost is not counted
    start = time.perf_counter()
    with open(tmp_path / "a.csv", "wb") as out:
        write_csv(iter(rows), out)
    middle = time.perf_counter()
    with open(tmp_path / "a.geojson", "wb") as out:
        write_geojson(iter(rows), out)
    end = time.perf_counter()
    with open(tmp_path / "b.csv", "wb") as csv_out, open(tmp_path / "b.geojson", "wb") as geo:
        write_csv_and_geojson(iter(rows), csv_out, geo)
    one_pass = time.perf_counter()
    print(
        f"\n100k rows: CSV {middle - start:.2f} s, GeoJSON {end - middle:.2f} s, "
        f"both {n / (end - start):,.0f} rows/s; in one pass {one_pass - end:.2f} s, "
        f"{n / (one_pass - end):,.0f} rows/s"
    )


# -- hashing -------------------------------------------------------------------------------------


def test_hashing_writer_counts_and_hashes_what_passes_through(tmp_path):
    path = tmp_path / "x.csv"
    with open(path, "wb") as raw:
        writer = HashingWriter(raw)
        write_csv(generated_rows(300), writer)
        writer.flush()
    data = path.read_bytes()
    assert writer.size == writer.tell() == len(data)
    assert writer.hexdigest() == hashlib.sha256(data).hexdigest() == sha256_file(path)
    assert writer.entry("x.csv") == {
        "name": "x.csv",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_zipfile_accepts_a_hashing_writer_as_a_forward_only_stream(tmp_path):
    """Why HashingWriter has no seek: zipfile then streams (data descriptors) and still works."""
    path = tmp_path / "s.zip"
    with open(path, "wb") as raw:
        writer = HashingWriter(raw)
        with zipfile.ZipFile(writer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("a.txt", "线索" * 1000)
    assert writer.hexdigest() == sha256_file(path)
    with zipfile.ZipFile(path) as archive:
        assert archive.read("a.txt").decode() == "线索" * 1000
        assert archive.getinfo("a.txt").flag_bits & 0x08  # data descriptor


def test_sha256_file_reads_big_files_in_chunks(tmp_path):
    path = tmp_path / "big"
    data = bytes(range(256)) * (3 * 4096 + 7)  # > 3 MiB, not a multiple of the chunk size
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest() == files.sha256_bytes(data)
    assert files.describe(path) == {
        "name": "big",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert files.describe(path, "data/big.bin")["name"] == "data/big.bin"


# -- ZIP -----------------------------------------------------------------------------------------


def jpeg(tmp_path: Path, name: str, size: int = 50_000) -> Path:
    path = tmp_path / name
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes((i * 7) % 251 for i in range(size)))
    return path


def test_zip_streams_members_and_puts_the_manifest_last(tmp_path):
    photo = jpeg(tmp_path, "p.jpg")
    seen_entries = []

    def manifest(entries):
        seen_entries.extend(entries)
        return json.dumps({"files": entries}).encode()

    def csv_chunks():
        out = io.BytesIO()
        write_csv(generated_rows(50), out)
        yield out.getvalue()

    summary = write_zip(
        tmp_path / "batch.zip",
        [
            ("tips.csv", csv_chunks),
            ("README.txt", "说明\n".encode()),
            (f"photos/{TIP_ID}/m1.jpg", photo),
        ],
        manifest,
        date_time=dt.datetime(2026, 11, 22, 5, 5, tzinfo=UTC),
    )
    assert summary.path == tmp_path / "batch.zip"
    assert not (tmp_path / "batch.zip.part").exists()
    assert summary.size == summary.path.stat().st_size
    assert summary.sha256 == sha256_file(summary.path)
    with zipfile.ZipFile(summary.path) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert [i.filename for i in infos] == [
            "tips.csv",
            "README.txt",
            f"photos/{TIP_ID}/m1.jpg",
            "manifest.json",
        ]
        by_name = {i.filename: i for i in infos}
        assert by_name[f"photos/{TIP_ID}/m1.jpg"].compress_type == zipfile.ZIP_STORED
        assert by_name["tips.csv"].compress_type == zipfile.ZIP_DEFLATED
        assert by_name["manifest.json"].compress_type == zipfile.ZIP_DEFLATED
        assert by_name["tips.csv"].date_time == (2026, 11, 22, 13, 5, 0)
        assert all(not i.flag_bits & 0x08 for i in infos)  # sizes in the local headers
        assert archive.read(f"photos/{TIP_ID}/m1.jpg") == photo.read_bytes()
        assert archive.read("README.txt").decode() == "说明\n"
        assert len(csv_rows(archive.read("tips.csv"))) == 50
        listed = json.loads(archive.read("manifest.json"))["files"]
        for entry in listed:
            content = archive.read(entry["name"])
            assert entry["size"] == len(content)
            assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    with zipfile.ZipFile(summary.path) as archive:
        assert archive.read("manifest.json") == summary.manifest
    names = ["tips.csv", "README.txt", f"photos/{TIP_ID}/m1.jpg"]
    assert [e["name"] for e in seen_entries] == [e["name"] for e in summary.files] == names


def test_zip_member_written_by_a_writer(tmp_path):
    with files.ClueZipWriter(tmp_path / "w.zip") as archive:
        with archive.open("tips.geojson") as member:
            write_geojson(generated_rows(10), member)
        summary = archive.finish(b"{}")
    with zipfile.ZipFile(summary.path) as z:
        data = z.read("tips.geojson")
    assert len(json.loads(data)["features"]) == 10
    assert summary.files == [
        {"name": "tips.geojson", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    ]


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../evil.txt",
        "photos/../../evil.txt",
        "photos/./a.jpg",
        "photos//a.jpg",
        "photos\\a.jpg",
        "C:/evil.txt",
        "c:evil.txt",
        "photos/a.jpg/",
        "",
        "a\x00.jpg",
        "photos/a.jpg.",
        "manifest.json",
    ],
)
def test_zip_rejects_unsafe_member_names_and_leaves_no_file(tmp_path, name):
    with pytest.raises(ValueError):
        write_zip(tmp_path / "bad.zip", [("ok.txt", b"ok"), (name, b"x")], b"{}")
    assert not (tmp_path / "bad.zip").exists()
    assert not (tmp_path / "bad.zip.part").exists()


def test_zip_rejects_duplicate_names(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        write_zip(tmp_path / "d.zip", [("a.txt", b"1"), ("A.TXT", b"2")], b"{}")
    assert not list(tmp_path.iterdir())


def test_zip_failure_while_streaming_leaves_no_file(tmp_path):
    def broken():
        yield b"start"
        raise OSError("storage went away")

    with pytest.raises(OSError, match="storage"):
        write_zip(tmp_path / "f.zip", [("a.csv", broken)], b"{}")
    assert not list(tmp_path.iterdir())


def test_safe_member_names_pass():
    for name in ("tips.csv", f"photos/{TIP_ID}/m1.jpg", "说明.txt"):
        assert check_member_name(name) == name
