"""st.py — the safetensors format in plain Python and numpy, for the tests.

The parity tests exchange tensors between PyTorch and nnc's trainers through
safetensors files. This module reads and writes them without the safetensors
package, by the same rules as runtime/host/safetensors.c:

    8 bytes   N, the header length, unsigned 64-bit little-endian
    N bytes   JSON: name -> {"dtype", "shape", "data_offsets": [begin, end]},
              and optionally "__metadata__" -> {str: str}; padded with spaces
              so that 8 + N is a multiple of 8
    the rest  the data; the tensors tile it exactly, little-endian

    import st
    st.save("w.st", {"fc.weight": model.fc.weight}, metadata={"step": "10"})
    t = st.load("w.st")          # a dict of numpy arrays
    t["fc.weight"], t.metadata   # the metadata is an attribute of the dict

save() writes float32 (numpy arrays or torch tensors, any float dtype, cast
to float32), in the order given, atomically (a temporary file, then
os.replace). load() returns F32 and F64 tensors as float32 and float64
arrays, F16 as float16, BF16 converted to float32, integer and bool dtypes
as the matching numpy type; it raises ValueError naming the file and the
problem on anything malformed.
"""
import json
import os
import struct

import numpy as np

_DTYPES = {  # safetensors name -> (numpy dtype, little-endian), element size
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
MAX_HEADER = 100_000_000


class Tensors(dict):
    """The tensors of a file by name, with the file's metadata (a dict of
    strings, empty if the file has none) as .metadata."""

    def __init__(self, items=(), metadata=None):
        super().__init__(items)
        self.metadata = dict(metadata or {})


def _as_float32(name, x):
    """x (a numpy array, torch tensor or list) as a contiguous float32 array"""
    if hasattr(x, "detach"):  # a torch tensor, possibly on a GPU, possibly bf16
        x = x.detach().cpu().float().numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"tensor '{name}' has dtype {a.dtype}; st.save writes numbers only")
    return np.array(a, dtype="<f4", order="C")  # (ascontiguousarray would make a scalar 1-d)


def save(path, tensors, metadata=None):
    """Writes tensors (name -> array) and metadata (str -> str) to path as
    float32 safetensors, atomically."""
    header, blobs, at = {}, [], 0
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"{path}: metadata keys and values must be strings, got {k!r}: {v!r}")
        header["__metadata__"] = dict(metadata)
    for name, x in tensors.items():
        if name == "__metadata__":
            raise ValueError(f"{path}: '__metadata__' is reserved, not a tensor name")
        a = _as_float32(name, x)
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _bad(path, why):
    return ValueError(f"{path}: {why}")


def load(path):
    """Reads path; returns a Tensors dict (name -> numpy array, in the file's
    order) with .metadata. Raises ValueError if the file is malformed."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise _bad(path, f"only {len(buf)} bytes long, not a safetensors file")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > len(buf) - 8:
        raise _bad(path, f"header length {n} is larger than the rest of the file ({len(buf) - 8} bytes)")
    if n > MAX_HEADER:
        raise _bad(path, f"header length {n} is absurd")
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"),
                            object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise _bad(path, f"the header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise _bad(path, "the header is not a JSON object")
    data = memoryview(buf)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _bad(path, "\"__metadata__\" is not an object of strings")
    out, spans = Tensors(metadata=meta), []
    for name, e in header.items():
        if not isinstance(e, dict) or not {"dtype", "shape", "data_offsets"} <= e.keys():
            raise _bad(path, f"tensor '{name}' needs dtype, shape and data_offsets")
        dt, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
        if dt not in _DTYPES:
            raise _bad(path, f"tensor '{name}' has unknown dtype {dt!r}")
        if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
            raise _bad(path, f"tensor '{name}' has a bad shape {shape!r}")
        if not isinstance(offs, list) or len(offs) != 2 or not all(_is_uint(o) for o in offs):
            raise _bad(path, f"tensor '{name}' has bad data_offsets {offs!r}")
        begin, end = offs
        size = np.dtype(_DTYPES[dt]).itemsize * int(np.prod(shape, dtype=object))
        if not begin <= end <= len(data) or end - begin != size:
            raise _bad(path, f"tensor '{name}': data_offsets {offs} do not fit shape {shape} "
                             f"of {dt} in {len(data)} bytes of data")
        a = np.frombuffer(data[begin:end], dtype=_DTYPES[dt]).reshape(shape)
        if dt == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.astype(a.dtype.newbyteorder("="), copy=True)
        spans.append((begin, end, name))
    at = 0
    for begin, end, name in sorted(spans):
        if begin != at:
            raise _bad(path, f"tensor '{name}' starts at {begin}, expected {at} (gap or overlap)")
        at = end
    if at != len(data):
        raise _bad(path, f"the data is {len(data)} bytes but the tensors cover {at}")
    return out


def _is_uint(x):
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"'{k}' appears twice")
        d[k] = v
    return d
