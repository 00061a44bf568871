"""The index file format shared by every vaccel index: a checked header, a JSON description of the
index's parameters and arrays, and the arrays' bytes; written atomically.

File format (little-endian), version 2:
    header  _HEADER: magic b'VACCELIX', format version, header size, index kind (e.g. 'flat',
            'sq', 'pq', 'ivfpq'), size of the description, size of the array payload,
            SHA-256 of description + payload, then a CRC-32 of the header bytes before it
    description  UTF-8 JSON: {"params": {...}, "arrays": [[name, dtype, shape], ...]}
    payload  the arrays' bytes in that order, C order, little-endian
Version 1 (FlatIndex only, before this module) is still read: see _read_v1.

A file is written to a temporary file in the target's directory, synced, then renamed over it, so
a failed save leaves the old file as it was. Everything read is checked before it is trusted: a
file that is not an index, truncated, damaged, inconsistent or from a newer version raises
IndexFileError, never a crash and never wrong data. Each index class checks the parameters and
array shapes it gets back (IndexFile.array / param raise IndexFileError on a mismatch).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import zlib

import numpy as np

from . import errors

__all__ = ["IndexFileError", "write", "read", "load_index", "register"]


class IndexFileError(errors.VaccelError):
    """A file that an index's load cannot trust: not an index file, damaged, truncated, of
    another index kind, or written by a newer format version."""


MAGIC = b"VACCELIX"
VERSION = 2
_HEADER = struct.Struct("<8sII16sQQ32s")      # followed by a CRC-32 of these bytes
HEADER_SIZE = _HEADER.size + 4
_V1_HEADER = struct.Struct("<8sII16s8sQQqdQ32s")
_DTYPES = ("uint8", "int8", "uint16", "int32", "uint32", "int64", "float16", "float32", "float64")
_MAX_DESCRIPTION = 1 << 24

_KINDS = {}


def register(kind):
    """Class decorator: `kind` files load through vaccel.load_index into this class, whose
    classmethod _from_file(IndexFile) rebuilds it."""
    def deco(cls):
        _KINDS[kind] = cls
        cls._file_kind = kind
        return cls
    return deco


def _raw(a):
    """The bytes of a C-contiguous array as a flat uint8 view (empty arrays included)."""
    return a.reshape(-1).view(np.uint8)


class IndexFile:
    """What read() returns: kind, params (a dict), arrays (name -> ndarray), path."""

    def __init__(self, path, kind, params, arrays, version):
        self.path, self.kind, self.params, self.arrays, self.version = path, kind, params, arrays, version

    def fail(self, what):
        raise IndexFileError(f"{self.path}: {what}")

    def param(self, name, types, check=None):
        """params[name], which must be of types and satisfy check (a predicate)."""
        if name not in self.params:
            self.fail(f"inconsistent description (no {name!r})")
        v = self.params[name]
        if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            self.fail(f"inconsistent description ({name} = {v!r})")
        if not isinstance(v, types) or (check is not None and not check(v)):
            self.fail(f"inconsistent description ({name} = {v!r})")
        return v

    def array(self, name, dtype, shape):
        """arrays[name] with this dtype and shape (None in shape: any length on that axis)."""
        a = self.arrays.get(name)
        if a is None:
            self.fail(f"inconsistent description (no array {name!r})")
        if a.dtype != np.dtype(dtype) or a.ndim != len(shape) or \
                any(s is not None and s != n for s, n in zip(shape, a.shape)):
            self.fail(f"inconsistent array {name!r}: {a.dtype}{list(a.shape)}, expected {np.dtype(dtype)}"
                      f"{['*' if s is None else s for s in shape]}")
        return a


def write(path, kind, params, arrays):
    """Write an index file atomically. params: JSON-serialisable dict; arrays: name -> ndarray
    (any dtype of _DTYPES)."""
    path = os.fspath(path)
    table, blobs = [], []
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.name not in _DTYPES:
            raise TypeError(f"array {name!r}: dtype {a.dtype} cannot be stored")
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        table.append([name, a.dtype.name, list(a.shape)])
        blobs.append(_raw(a))
    desc = json.dumps({"params": params, "arrays": table}, sort_keys=True).encode("utf-8")
    size = sum(b.nbytes for b in blobs)
    h = hashlib.sha256(desc)
    for b in blobs:
        h.update(b)
    head = _HEADER.pack(MAGIC, VERSION, HEADER_SIZE, kind.encode("ascii"), len(desc), size, h.digest())
    head += struct.pack("<I", zlib.crc32(head))
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".vaccel-index-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            f.write(desc)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _read_exact(f, n, path, what):
    data = f.read(n)
    if len(data) != n:
        raise IndexFileError(f"{path}: truncated {what}")
    return data


def read(path, kind=None):
    """Read and check an index file. kind: the kind the caller expects (IndexFileError if the
    file holds another)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
        if len(head) < len(MAGIC) or head[:len(MAGIC)] != MAGIC:
            raise IndexFileError(f"{path}: not a vaccel index file (bad magic)")
        if len(head) < 12:
            raise IndexFileError(f"{path}: truncated header")
        (version,) = struct.unpack_from("<I", head, 8)
        if version > VERSION:
            raise IndexFileError(f"{path}: written in index format version {version}; this vaccel reads "
                                 f"version {VERSION} or older (upgrade vaccel)")
        if version < 1:
            raise IndexFileError(f"{path}: unknown index format version {version}")
        if version == 1:
            out = _read_v1(f, path)
        else:
            out = _read_v2(f, head, path)
    if kind is not None and out.kind != kind:
        raise IndexFileError(f"{path}: holds a {out.kind!r} index, not a {kind!r} index "
                             f"(vaccel.load_index reads any kind)")
    return out


def _read_v2(f, head, path):
    if len(head) < HEADER_SIZE:
        raise IndexFileError(f"{path}: truncated header ({len(head)} of {HEADER_SIZE} bytes)")
    magic, version, hsize, kind, dsize, size, digest = _HEADER.unpack_from(head)
    (crc,) = struct.unpack_from("<I", head, _HEADER.size)
    if crc != zlib.crc32(head[:_HEADER.size]) or hsize != HEADER_SIZE:
        raise IndexFileError(f"{path}: damaged header (checksum mismatch)")
    try:
        kind = kind.rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError:
        raise IndexFileError(f"{path}: damaged header (index kind)") from None
    if dsize > _MAX_DESCRIPTION:
        raise IndexFileError(f"{path}: inconsistent header (description of {dsize} bytes)")
    f.seek(0, os.SEEK_END)
    have = f.tell() - HEADER_SIZE
    if have != dsize + size:
        what = "truncated" if have < dsize + size else "trailing bytes after the payload"
        raise IndexFileError(f"{path}: {what} (payload {have} bytes, header says {dsize + size})")
    f.seek(HEADER_SIZE)
    desc = _read_exact(f, dsize, path, "description")
    h = hashlib.sha256(desc)
    try:
        doc = json.loads(desc.decode("utf-8"))
        params, table = doc["params"], doc["arrays"]
        if not isinstance(params, dict) or not isinstance(table, list):
            raise ValueError("layout")
        specs = []
        for name, dt, shape in table:
            if not isinstance(name, str) or dt not in _DTYPES or not isinstance(shape, list) or \
                    not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
                raise ValueError(f"array {name!r}")
            specs.append((name, np.dtype(dt).newbyteorder("<"), tuple(shape)))
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise IndexFileError(f"{path}: damaged description ({exc})") from None
    total = sum(int(np.prod(s, dtype=np.int64)) * dt.itemsize for _, dt, s in specs)
    if total != size or len({n for n, _, _ in specs}) != len(specs):
        raise IndexFileError(f"{path}: inconsistent description (arrays of {total} bytes, payload {size})")
    arrays = {}
    for name, dt, shape in specs:
        a = np.empty(shape, dt)
        view = _raw(a)
        if a.nbytes and f.readinto(view) != a.nbytes:
            raise IndexFileError(f"{path}: truncated payload")
        h.update(view)
        arrays[name] = a.astype(dt.newbyteorder("="), copy=False)
    if h.digest() != digest:
        raise IndexFileError(f"{path}: damaged payload (checksum mismatch)")
    return IndexFile(path, kind, params, arrays, 2)


def _read_v1(f, path):
    """Version 1: FlatIndex's first format (header fields instead of a description)."""
    f.seek(0)
    head = f.read(_V1_HEADER.size + 4)
    if len(head) < _V1_HEADER.size + 4:
        raise IndexFileError(f"{path}: truncated header ({len(head)} of {_V1_HEADER.size + 4} bytes)")
    magic, version, hsize, metric, dtype, d, n, next_id, p, size, digest = _V1_HEADER.unpack_from(head)
    (crc,) = struct.unpack_from("<I", head, _V1_HEADER.size)
    if crc != zlib.crc32(head[:_V1_HEADER.size]) or hsize != _V1_HEADER.size + 4:
        raise IndexFileError(f"{path}: damaged header (checksum mismatch)")
    try:
        metric = metric.rstrip(b"\0").decode("ascii")
        dtype = np.dtype(dtype.rstrip(b"\0").decode("ascii"))
    except (UnicodeDecodeError, TypeError) as exc:
        raise IndexFileError(f"{path}: damaged header ({exc})") from None
    if dtype.name not in ("float32", "float16", "uint8") or d < 1 or size != n * (d * dtype.itemsize + 8):
        raise IndexFileError(f"{path}: inconsistent header (dtype {dtype}, d {d}, count {n}, payload {size})")
    f.seek(0, os.SEEK_END)
    have = f.tell() - hsize
    if have != size:
        what = "truncated" if have < size else "trailing bytes after the payload"
        raise IndexFileError(f"{path}: {what} (payload {have} bytes, header says {size})")
    f.seek(hsize)
    vec = np.empty((n, d), dtype.newbyteorder("<"))
    ids = np.empty(n, "<i8")
    h = hashlib.sha256()
    for a in (vec, ids):
        view = _raw(a)
        if a.nbytes and f.readinto(view) != a.nbytes:
            raise IndexFileError(f"{path}: truncated payload")
        h.update(view)
    if h.digest() != digest:
        raise IndexFileError(f"{path}: damaged payload (checksum mismatch)")
    params = {"d": int(d), "metric": metric, "dtype": dtype.name, "p": float(p), "next_id": int(next_id)}
    arrays = {"vectors": vec.astype(dtype, copy=False), "ids": ids.astype(np.int64, copy=False)}
    return IndexFile(path, "flat", params, arrays, 1)


def load_index(path):
    """Load any vaccel index file, whatever its kind (like faiss.read_index)."""
    file = read(path)
    cls = _KINDS.get(file.kind)
    if cls is None:
        raise IndexFileError(f"{path}: unknown index kind {file.kind!r} (written by a newer vaccel?)")
    return cls._from_file(file)


def check_ids(file, ids, next_id):
    """Stored ids must be distinct, non-negative and below the next default id."""
    if ids.size and (ids.min() < 0 or np.unique(ids).size != ids.size or ids.max() >= next_id):
        file.fail("inconsistent ids")
