"""GeoPackage files (the container of nuPlan maps) read and written with the standard library's sqlite3.

A GeoPackage is an SQLite database with the ``application_id`` "GPKG", the tables ``gpkg_spatial_ref_sys``,
``gpkg_contents`` and ``gpkg_geometry_columns``, and one table per layer whose geometry column holds
GeoPackage blobs: ``GP``, a version byte, a flags byte (byte order, envelope kind, empty), the int32 SRS id, an
optional envelope, then ISO WKB (``reference/nuplan_openscene_formats.md`` §1.4). Geometry goes through
shapely's WKB codec; nothing here needs GDAL. Coordinates are returned as stored; ``table_srs`` tells the
caller which reference system that is.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from irl_vla.common.io import DataFormatError, replacing

APPLICATION_ID = 0x47504B47  # "GPKG"
USER_VERSION = 10300  # GeoPackage 1.3
WGS84 = 4326
_ENVELOPE_DOUBLES = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}
_FIXED_TIME = "2000-01-01T00:00:00.000Z"  # last_change of every table: files are byte-reproducible

_GEOGCS_WGS84 = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
    'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],'
    'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4326"]]'
)


def srs_definition(epsg: int) -> str:
    """WKT of EPSG:4326 or of a WGS 84 / UTM zone (EPSG 32601-32660 north, 32701-32760 south)."""
    if epsg == WGS84:
        return _GEOGCS_WGS84
    north = 32601 <= epsg <= 32660
    if not (north or 32701 <= epsg <= 32760):
        raise ValueError(f"srs_definition: EPSG:{epsg} is neither WGS 84 nor a WGS 84 / UTM zone")
    zone = epsg % 100
    hemisphere = "N" if north else "S"
    return (
        f'PROJCS["WGS 84 / UTM zone {zone}{hemisphere}",{_GEOGCS_WGS84},PROJECTION["Transverse_Mercator"],'
        f'PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",{6 * zone - 183}],'
        f'PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],'
        f'PARAMETER["false_northing",{0 if north else 10000000}],UNIT["metre",1,AUTHORITY["EPSG","9001"]],'
        f'AXIS["Easting",EAST],AXIS["Northing",NORTH],AUTHORITY["EPSG","{epsg}"]]'
    )


@dataclass
class Table:
    """One table to write.

    Attributes:
        name: table name.
        columns: ``(name, SQL type)`` of the attribute columns (INTEGER, REAL, TEXT, BOOLEAN).
        rows: attribute values per row, in column order (``None`` is NULL).
        geometry_type: ``POLYGON``, ``LINESTRING``, ``POINT``..., or ``None`` for an attributes table.
        geometries: one geometry per row (feature tables).
        fids: feature ids per row (default 1, 2, ...).
    """

    name: str
    columns: list[tuple[str, str]]
    rows: list[Sequence[Any]] = field(default_factory=list)
    geometry_type: str | None = None
    geometries: list[BaseGeometry] = field(default_factory=list)
    fids: list[int] | None = None

    def __post_init__(self) -> None:
        if self.geometry_type is not None and len(self.geometries) != len(self.rows):
            raise ValueError(f"Table {self.name}: {len(self.rows)} rows, {len(self.geometries)} geometries")
        if self.fids is not None and len(self.fids) != len(self.rows):
            raise ValueError(f"Table {self.name}: {len(self.rows)} rows, {len(self.fids)} fids")
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"Table {self.name}: row {i} has {len(row)} values, {len(self.columns)} columns")


def geometry_blob(geom: BaseGeometry, srs_id: int) -> bytes:
    """GeoPackage blob of ``geom``: little-endian header with an xy envelope, then ISO WKB."""
    if geom.is_empty:
        return b"GP" + bytes([0, 0b10001]) + struct.pack("<i", srs_id) + shapely.to_wkb(geom, byte_order=1)
    minx, miny, maxx, maxy = geom.bounds
    header = b"GP" + bytes([0, 0b011]) + struct.pack("<i4d", srs_id, minx, maxx, miny, maxy)
    return header + shapely.to_wkb(geom, byte_order=1, flavor="iso")


def parse_geometry_blob(blob: bytes, where: str) -> BaseGeometry:
    """Geometry of a GeoPackage blob.

    Raises:
        DataFormatError: naming ``where`` when the blob is not a GeoPackage geometry.
    """
    if len(blob) < 8 or blob[:2] != b"GP":
        raise DataFormatError(f"{where}: not a GeoPackage geometry blob")
    flags = blob[3]
    envelope = (flags >> 1) & 0b111
    if envelope not in _ENVELOPE_DOUBLES:
        raise DataFormatError(f"{where}: bad envelope code {envelope}")
    start = 8 + 8 * _ENVELOPE_DOUBLES[envelope]
    try:
        return shapely.from_wkb(blob[start:])
    except shapely.errors.GEOSException as e:
        raise DataFormatError(f"{where}: bad WKB ({e})") from None


def write_geopackage(path: str | os.PathLike[str], tables: list[Table], srs_id: int) -> None:
    """Write ``tables`` (geometries in EPSG ``srs_id``) to a new GeoPackage at ``path`` (atomically)."""
    path = Path(path)
    with replacing(path) as tmp:
        con = sqlite3.connect(tmp)
        try:
            _write(con, tables, srs_id)
            con.commit()
        finally:
            con.close()


def _write(con: sqlite3.Connection, tables: list[Table], srs_id: int) -> None:
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute(f"PRAGMA user_version = {USER_VERSION}")
    con.execute(
        "CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, "
        "organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, "
        "description TEXT)"
    )
    srs_rows = [
        ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", None),
        ("Undefined geographic SRS", 0, "NONE", 0, "undefined", None),
        ("WGS 84 geodetic", WGS84, "EPSG", WGS84, srs_definition(WGS84), None),
    ]
    if srs_id != WGS84:
        srs_rows.append((f"EPSG:{srs_id}", srs_id, "EPSG", srs_id, srs_definition(srs_id), None))
    con.executemany("INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", srs_rows)
    con.execute(
        "CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, "
        "identifier TEXT UNIQUE, description TEXT DEFAULT '', last_change DATETIME NOT NULL, min_x DOUBLE, "
        "min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER REFERENCES gpkg_spatial_ref_sys(srs_id))"
    )
    con.execute(
        "CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL, "
        "geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL, "
        "PRIMARY KEY (table_name, column_name))"
    )
    for table in tables:
        attrs = ", ".join(f'"{name}" {kind}' for name, kind in table.columns)
        fids = table.fids if table.fids is not None else list(range(1, len(table.rows) + 1))
        if table.geometry_type is None:
            con.execute(f'CREATE TABLE "{table.name}" (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {attrs})')
            marks = ", ".join("?" * (len(table.columns) + 1))
            con.executemany(
                f'INSERT INTO "{table.name}" VALUES ({marks})', [(f, *r) for f, r in zip(fids, table.rows, strict=True)]
            )
            con.execute(
                "INSERT INTO gpkg_contents VALUES (?, 'attributes', ?, '', ?, NULL, NULL, NULL, NULL, NULL)",
                (table.name, table.name, _FIXED_TIME),
            )
            continue
        sep = ", " if attrs else ""
        con.execute(
            f'CREATE TABLE "{table.name}" (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, geom {table.geometry_type}'
            f"{sep}{attrs})"
        )
        marks = ", ".join("?" * (len(table.columns) + 2))
        values = [(f, geometry_blob(g, srs_id), *r) for f, g, r in zip(fids, table.geometries, table.rows, strict=True)]
        con.executemany(f'INSERT INTO "{table.name}" VALUES ({marks})', values)
        bounds = shapely.total_bounds(np.array(table.geometries, dtype=object)) if table.geometries else [None] * 4
        bounds = [None if b is None or not np.isfinite(b) else float(b) for b in bounds]
        con.execute(
            "INSERT INTO gpkg_contents VALUES (?, 'features', ?, '', ?, ?, ?, ?, ?, ?)",
            (table.name, table.name, _FIXED_TIME, *bounds, srs_id),
        )
        con.execute(
            "INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', ?, ?, 0, 0)",
            (table.name, table.geometry_type, srs_id),
        )


@dataclass
class LayerData:
    """A table read back: feature ids, attribute columns and (for feature tables) geometries."""

    fids: list[int]
    columns: dict[str, list[Any]]
    geometries: list[BaseGeometry] | None
    srs_id: int | None

    def __len__(self) -> int:
        return len(self.fids)

    def optional(self, name: str, default: Any = None) -> list[Any]:
        """Column ``name``, or ``default`` for every row when the table has no such column."""
        return self.columns.get(name, [default] * len(self.fids))


class GeoPackage:
    """Read access to a GeoPackage file.

    Raises:
        FileNotFoundError: when the file is missing.
        DataFormatError: naming the file when it is not a GeoPackage.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"GeoPackage {self.path} does not exist")
        try:
            self._con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            app = self._con.execute("PRAGMA application_id").fetchone()[0]
            names = {r[0] for r in self._con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise DataFormatError(f"{self.path}: not a GeoPackage ({e})") from None
        if app != APPLICATION_ID or "gpkg_contents" not in names:
            raise DataFormatError(f"{self.path}: not a GeoPackage (application_id {app:#x}, tables {sorted(names)})")
        self._tables = names

    def close(self) -> None:
        """Close the database."""
        self._con.close()

    def __enter__(self) -> GeoPackage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has_table(self, name: str) -> bool:
        """Whether the table exists."""
        return name in self._tables

    def table_srs(self, name: str) -> tuple[str, int] | None:
        """``(organization, code)`` of a feature table's reference system (``None`` for attribute tables)."""
        row = self._con.execute(
            "SELECT s.organization, s.organization_coordsys_id FROM gpkg_geometry_columns g "
            "JOIN gpkg_spatial_ref_sys s ON g.srs_id = s.srs_id WHERE g.table_name = ?",
            (name,),
        ).fetchone()
        return None if row is None else (str(row[0]).upper(), int(row[1]))

    def read(self, name: str) -> LayerData:
        """Every row of table ``name``.

        Raises:
            DataFormatError: naming the file and table when the table is missing or a geometry is corrupt.
        """
        if name not in self._tables:
            raise DataFormatError(f"{self.path}: no table {name!r}")
        geom_row = self._con.execute(
            "SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (name,)
        ).fetchone()
        cursor = self._con.execute(f'SELECT * FROM "{name}"')
        header = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        pk = self._primary_key(name) or header[0]
        fid_index = header.index(pk)
        geom_index = header.index(geom_row[0]) if geom_row is not None else None
        columns = {col: [r[i] for r in rows] for i, col in enumerate(header) if i not in (fid_index, geom_index)}
        geometries = None
        if geom_index is not None:
            geometries = [
                parse_geometry_blob(r[geom_index], f"{self.path}: {name} fid {r[fid_index]}")
                if r[geom_index] is not None
                else shapely.Point()
                for r in rows
            ]
        return LayerData(
            [int(r[fid_index]) for r in rows], columns, geometries, None if geom_row is None else geom_row[1]
        )

    def _primary_key(self, name: str) -> str | None:
        for row in self._con.execute(f'PRAGMA table_info("{name}")'):
            if row[5]:  # pk flag
                return str(row[1])
        return None
