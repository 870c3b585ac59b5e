"""Checkpoints: parameters saved to and loaded from safetensors files, straight from and into the arena.

The format is `safetensors <https://github.com/huggingface/safetensors>`_, which torch, JAX and
Hugging Face read: an 8-byte little-endian header length ``n``, ``n`` bytes of JSON (each tensor's
``dtype``, ``shape`` and ``data_offsets`` into the data that follows, and an optional
``__metadata__`` of strings), then the tensors' bytes, back to back. No pickle: loading a file
cannot run code.

Keys are the parameters' structural paths (``h.0.c_attn.weight``), the names that key their random
streams and the ones a PyTorch or JAX user maps to; ``ParameterDict.save`` writes full parameter
names instead, as Gluon does. The metadata says how the numbers were made:

- ``gpuinit.version``, ``gpuinit.stream_contract`` (:data:`gpuinit.streams.CONTRACT_VERSION`);
- ``gpuinit.seed`` (where every parameter saved has the same one);
- ``gpuinit.parameters``: JSON, for each key its initializer (``repr``), role and seed;
- ``gpuinit.keys``: ``paths``, ``names`` (``ParameterDict.save``) or ``arrays`` (``nd.save``),
  and ``gpuinit.container`` (``list`` or ``dict``) for ``nd.save``.

Loading is a materialization (:func:`gpuinit.lifecycle.load`): the header gives every shape (unknown
dimensions are filled in, known ones checked), the arena is allocated once, and each tensor's
bytes are read from the file straight into its slot, with no second copy. On a GPU the bytes go
through one page-locked staging buffer of at most :data:`STAGING_BYTES`, whatever the model's
size. All or nothing: if anything fails, no parameter changes and the memory is given back.

Why not ``safetensors.numpy.load_file``: it returns new arrays (a second full copy, and the file's
pages mapped as well), and it has no bfloat16. So this module reads the header itself (the format
is documented and small) and reads each tensor with ``readinto``; the ``safetensors`` package, the
format's reference implementation, checks every file written here before it takes its real name.

Writes go to a temporary file in the same folder, flushed to disk, checked, and renamed into place
(``os.replace``): a crash never leaves half a file under the real name (at worst a hidden
``.NAME.*.tmp`` beside it).

Example:
    >>> import os, tempfile
    >>> from gpuinit import nd, nn
    >>> net = nn.Dense(3, in_units=4)
    >>> net.initialize(device="cpu", seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "dense.safetensors")
    >>> net.save_parameters(path)
    >>> fresh = nn.Dense(3)                       # in_units unknown: the file gives it
    >>> fresh.load_parameters(path, device="cpu")
    >>> fresh.weight.shape, bool((fresh.weight.data() == net.weight.data()).all())
    ((3, 4), True)
"""

from __future__ import annotations

import json
import math
import mmap
import os
import secrets
import struct
import warnings
from stat import S_ISREG
from typing import NamedTuple

import numpy as np

from . import backend, checks, dtypes, lifecycle, sharding
from .arrays import as_ndarray
from .backend import is_cupy_array
from .device import as_device
from .errors import (ArgumentError, ArgumentTypeError, CheckpointError, CheckpointNotFoundError,
                     DeferredInitializationError, UninitializedParameterError)
from .sharding import shard_range

# Host memory a GPU transfer (or a dtype conversion) stages through, at most, per call.
STAGING_BYTES = 256 << 20

# Reads of at least MAP_FROM_BYTES copy from the file mapped in windows of WINDOW_BYTES.
MAP_FROM_BYTES = 1 << 20
WINDOW_BYTES = 8 << 20
_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux: map the window's pages in one call

# The safetensors reference implementation refuses headers above 100 MB; so do we.
MAX_HEADER_BYTES = 100_000_000

_CODES = {  # safetensors dtype code -> NumPy dtype name
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}
_NAMES = {name: code for code, name in _CODES.items()}
# Valid in the format, but no NumPy dtype here: a file holding them is refused when they are read.
_OTHER_CODES = {"F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64", "F8_E4M3FNUZ",
                "F8_E5M2FNUZ"}
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
             "C64": 8, "F8_E4M3FNUZ": 1, "F8_E5M2FNUZ": 1}

# Splits of a tensor among ranks for load_shard: name -> (shape, rank, world_size) -> (start, stop)
# of the rank's flat elements, the same functions gpuinit.shard uses. Any split whose slices are
# contiguous row-major ranges plugs in here: "flat" (gpuinit.shard's), and "dim0" (whole rows,
# FSDP2's Shard(0)) where gpuinit.sharding has it.
SPLITS = {
    "flat": lambda shape, rank, world_size: shard_range(math.prod(shape), rank, world_size),
}
if hasattr(sharding, "dim0_range"):
    SPLITS["dim0"] = sharding.dim0_range


def _quote(filename) -> str:
    return repr(os.fspath(filename))


def _few(names, n=5) -> str:
    names = list(names)
    return ", ".join(repr(x) for x in names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _dtype_code(dtype, where: str) -> str:
    dtype = np.dtype(dtype)
    code = _NAMES.get("bfloat16" if dtypes.is_bfloat16(dtype) else dtype.name)
    if code is None or (dtype.byteorder == ">"):
        raise ArgumentTypeError(f"{where}: dtype {dtype} cannot be saved in a safetensors file; "
                                f"save float, integer or bool arrays ({', '.join(sorted(_NAMES))})")
    return code


# --- reading: what a file is, its header, and its bytes -----------------------------------------

def _looks_like(head: bytes) -> str | None:
    """What a file that is not safetensors looks like, from its first bytes (None: no idea)."""
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return (f"a Python pickle (protocol {head[1]}: pickle.dump, joblib, torch.save's legacy format); "
                "it was not unpickled, since unpickling can run code")
    if head[:4] == b"PK\x03\x04":
        return ("a ZIP archive (torch.save's format, which holds a pickle, or NumPy's .npz); it was not "
                "opened, since its pickle could run code")
    if head[:6] == b"\x93NUMPY":
        return "a NumPy .npy file (numpy.save)"
    if len(head) >= 16 and struct.unpack("<QQ", head[:16]) == (0x112, 0):
        return "an MXNet NDArray file (mx.nd.save, Gluon's save_parameters: .params)"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "an HDF5 file (Keras .h5, h5py)"
    if head[:4] == b"GGUF":
        return "a GGUF file (llama.cpp)"
    if head[:2] == b"\x1f\x8b":
        return "gzip-compressed data"
    if head[:1] in (b"{", b"["):
        return "JSON text"
    return None


class Tensor(NamedTuple):
    """One tensor of a safetensors file: where its bytes are, and what they hold."""

    key: str
    code: str     # the safetensors dtype code (F32, BF16, ...)
    shape: tuple
    start: int    # the file offset of its first byte
    nbytes: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class SafetensorsFile:
    """A safetensors file, opened and checked; its tensors' bytes are read on demand.

    Opening reads the header only, and checks all of it (every entry, and that the tensors cover
    the data exactly, to the end of the file), so a bad file is refused before anything is
    allocated. Use it as a context manager (the file stays open until then).

    Attributes:
        filename: the path given; size: the file's size in bytes.
        tensors: ``{key: Tensor}`` in the header's order; metadata: ``{str: str}``.

    Raises:
        CheckpointNotFoundError: no such file. CheckpointError: unreadable, another format,
            truncated, or a corrupted header; the message names the file and says what is wrong.
    """

    def __init__(self, filename):
        self.filename = os.fspath(filename)
        self._staging = None
        self._mappable = False
        try:
            self._fh = open(self.filename, "rb", buffering=0)
        except FileNotFoundError:
            raise CheckpointNotFoundError(f"checkpoint {_quote(filename)} does not exist; check the path "
                                          f"(the current folder is {os.getcwd()!r})") from None
        except IsADirectoryError:
            raise CheckpointError(f"checkpoint {_quote(filename)} is a folder, not a file; give the "
                                  "path of a .safetensors file") from None
        except OSError as exc:
            raise CheckpointError(f"cannot open checkpoint {_quote(filename)}: {exc}") from None
        try:
            stat = os.fstat(self._fh.fileno())
            self.size = stat.st_size
            self._mappable = hasattr(mmap, "PROT_READ") and S_ISREG(stat.st_mode)
            self.metadata, self.tensors = self._parse()
        except BaseException:
            self._fh.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._staging = None
        self._fh.close()

    def _bad(self, problem: str) -> CheckpointError:
        return CheckpointError(f"{_quote(self.filename)} is not a valid safetensors file: {problem}")

    def _parse(self):
        head = self._pread(0, min(self.size, 64))
        # A safetensors file has "{" right after its 8-byte header length; only a file without it
        # is matched against other formats' first bytes (a header of 1152 bytes starts with the
        # bytes of a protocol-4 pickle's opcode, 0x80 0x04).
        if self.size < 9 or head[8:9] != b"{":
            other = _looks_like(head)
            if other is not None:
                raise CheckpointError(f"{_quote(self.filename)} is not a safetensors file: it looks like {other}. "
                                      "gpuinit reads safetensors files only (save_parameters writes them); "
                                      "convert it where it was made, e.g. safetensors.torch.save_file")
            if self.size <= 8:
                raise self._bad("it is empty" if not self.size else
                                f"it is {self.size} bytes long, too short for the 8-byte header length and the "
                                "header it must start with (an interrupted copy or download?)")
            raise CheckpointError(f"{_quote(self.filename)} is not a safetensors file: it does not start with an "
                                  f"8-byte header length and a JSON header (its first bytes are {head[:16]!r})")
        (n,) = struct.unpack("<Q", head[:8])
        if n > MAX_HEADER_BYTES:
            raise self._bad(f"its header length field says {n} bytes, more than the format's limit of "
                            f"{MAX_HEADER_BYTES}: the header is corrupted")
        if 8 + n > self.size:
            raise self._bad(f"it is truncated: its header is {n} bytes long but the file holds only "
                            f"{self.size - 8} bytes after the length field (an interrupted copy or download?)")
        raw = self._pread(8, n)
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise self._bad(f"its header is corrupted: not JSON text ({exc})") from None
        if not isinstance(header, dict):
            raise self._bad(f"its header is corrupted: a JSON {type(header).__name__}, not an object")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in metadata.items()):
            raise self._bad("its header is corrupted: __metadata__ must map strings to strings")
        data_start = 8 + n
        tensors, spans = {}, []
        for key, entry in header.items():
            tensors[key] = tensor = self._entry(key, entry, data_start)
            spans.append((tensor.start - data_start, tensor.start - data_start + tensor.nbytes, key))
        spans.sort()
        end = 0
        for begin, stop, key in spans:
            if begin != end:
                raise self._bad(f"its header is corrupted: tensor {key!r} starts at byte {begin} of the data, "
                                f"but the tensors before it end at {end} (tensors must follow each other, "
                                "without gaps or overlaps)")
            end = stop
        held = self.size - data_start
        if end > held:
            raise self._bad(f"it is truncated: its header describes {end} bytes of tensor data but the file "
                            f"holds {held} (an interrupted copy or download?)")
        if end < held:
            raise self._bad(f"its header describes {end} bytes of tensor data but {held} follow it: "
                            "the header is corrupted, or something was appended to the file")
        return metadata, tensors

    def _entry(self, key, entry, data_start) -> Tensor:
        what = f"its header is corrupted: the entry of tensor {key!r}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise self._bad(f"{what} must have exactly dtype, shape and data_offsets, got {entry!r}")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if code not in _ITEMSIZE and code not in _OTHER_CODES:
            raise self._bad(f"{what} has an unknown dtype {code!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise self._bad(f"{what} has shape {shape!r}; expected a list of non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise self._bad(f"{what} has data_offsets {offsets!r}; expected [begin, end] with 0 <= begin <= end")
        nbytes = offsets[1] - offsets[0]
        itemsize = _ITEMSIZE.get(code)
        if itemsize is not None and math.prod(shape) * itemsize != nbytes:
            raise self._bad(f"{what} has shape {tuple(shape)!r} of {code} ({math.prod(shape) * itemsize} bytes) "
                            f"but data_offsets {offsets!r} span {nbytes} bytes")
        return Tensor(key, code, tuple(shape), data_start + offsets[0], nbytes)

    def dtype(self, tensor: Tensor) -> np.dtype:
        """The NumPy dtype of ``tensor``.

        Raises:
            CheckpointError: a dtype NumPy cannot hold (float8), or bfloat16 without ml_dtypes.
        """
        name = _CODES.get(tensor.code)
        if name is None:
            raise CheckpointError(f"{_quote(self.filename)}: tensor {tensor.key!r} has dtype {tensor.code}, "
                                  "which gpuinit cannot hold; convert it to F32, F16 or BF16 where it was saved")
        if name == "bfloat16":
            bf16 = dtypes.bfloat16()
            if bf16 is None:
                raise CheckpointError(f"{_quote(self.filename)}: tensor {tensor.key!r} is bfloat16, which needs "
                                      "the ml_dtypes package (NumPy has no bfloat16): pip install 'gpuinit[bf16]'")
            return bf16
        return np.dtype(name)

    # --- bytes --------------------------------------------------------------------------------

    def _pread(self, offset: int, n: int) -> bytes:
        out = np.empty(n, np.uint8)
        self._read_exact(offset, out)
        return out.tobytes()

    def _read_exact(self, offset: int, out: np.ndarray) -> None:
        """Fill ``out`` (a contiguous host array, viewed as bytes) with the file's bytes from
        ``offset``, with no copy in between.

        Large reads copy from a mapped window of the file (at most :data:`WINDOW_BYTES` mapped at
        a time, so the process's RSS grows by the window, not the file): on the VMs measured that
        is several times faster than ``readinto``, whose kernel-side copy and page faults dominate
        (see BENCHMARKS.md). Small reads, and files that cannot be mapped, use ``readinto``.
        """
        out = out.reshape(-1).view(np.uint8)
        if out.nbytes >= MAP_FROM_BYTES and self._mappable:
            try:
                self._copy_mapped(offset, out)
                return
            except (OSError, ValueError):
                self._mappable = False  # a file system without mmap: read instead
        view = memoryview(out)
        self._fh.seek(offset)
        done, n = 0, len(view)
        while done < n:
            try:
                got = self._fh.readinto(view[done:])
            except OSError as exc:
                raise CheckpointError(f"reading {_quote(self.filename)} failed at byte {offset + done}: {exc}") from exc
            if not got:
                raise self._shrunk(offset + done)
            done += got

    def _shrunk(self, where: int) -> CheckpointError:
        return CheckpointError(f"{_quote(self.filename)} ended at byte {where} while being read (it held "
                               f"{self.size} bytes when opened): it was cut short or replaced meanwhile")

    def _copy_mapped(self, offset: int, out: np.ndarray) -> None:
        fd = self._fh.fileno()
        granularity = mmap.ALLOCATIONGRANULARITY
        done, n = 0, out.nbytes
        while done < n:
            start = offset + done
            base = start - start % granularity
            length = min(WINDOW_BYTES, n - done + (start - base))
            # Touching a mapped page past the end of the file kills the process (SIGBUS): check
            # that the file still holds the window before mapping it.
            if os.fstat(fd).st_size < base + length:
                raise self._shrunk(os.fstat(fd).st_size)
            window = mmap.mmap(fd, length, flags=mmap.MAP_SHARED | _MAP_POPULATE, prot=mmap.PROT_READ, offset=base)
            try:
                source = np.frombuffer(window, np.uint8, length - (start - base), start - base)
                out[done:done + source.size] = source
                done += source.size
            finally:
                source = None  # the window cannot close while an array holds it
                window.close()

    def staging(self, nbytes: int, gpu: bool) -> np.ndarray:
        """This file's host staging buffer, ``nbytes`` at least (callers ask for at most about
        :data:`STAGING_BYTES`): page-locked where it feeds a GPU. Kept until the file is closed."""
        kind = "pinned" if gpu else "host"
        buffer = self._staging.get(kind) if self._staging else None
        if buffer is None or len(buffer) < nbytes:
            self._staging = {k: v for k, v in (self._staging or {}).items() if k != kind}
            buffer = backend.pinned_host_buffer(nbytes) if gpu else np.empty(nbytes, np.uint8)
            self._staging[kind] = buffer
        return buffer

    def read(self, tensor: Tensor, dest, dtype=None, first: int = 0, count: int | None = None) -> None:
        """Read elements ``[first, first + count)`` of ``tensor`` (flat, row-major) into ``dest``.

        Args:
            dest: a contiguous 1-D ``uint8`` array (NumPy, or CuPy: then through the staging buffer)
                of exactly ``count * dtype.itemsize`` bytes, such as a parameter's arena slot.
            dtype: the dtype to store (default: the tensor's); other than the tensor's, the values are
                converted chunk by chunk, and a conversion that overflows is refused.

        Raises:
            CheckpointError: a read failed, or converted values would overflow ``dtype``.
        """
        source = self.dtype(tensor)
        dtype = source if dtype is None else np.dtype(dtype)
        count = tensor.size - first if count is None else count
        offset = tensor.start + first * source.itemsize
        gpu = is_cupy_array(dest)
        if dest.nbytes != count * dtype.itemsize:
            raise CheckpointError(f"internal error: {dest.nbytes} bytes given for {count} elements of {dtype}")
        if dtype == source:
            if not gpu:
                self._read_exact(offset, dest)
                return
            buffer = self.staging(min(STAGING_BYTES, max(dest.nbytes, 1)), gpu=True)
            read_staged(self._read_exact, offset, dest, buffer[:STAGING_BYTES], backend.copy_to_device)
            return
        # elements per chunk: a multiple of 8, so both halves of the buffer stay aligned
        chunk = max(8, (STAGING_BYTES // 2) // max(source.itemsize, dtype.itemsize) // 8 * 8)
        chunk = min(chunk, -(-max(count, 1) // 8) * 8)
        host = self.staging(chunk * (source.itemsize + dtype.itemsize), gpu)
        raw, converted = host[:chunk * source.itemsize], host[chunk * source.itemsize:][:chunk * dtype.itemsize]
        typed_dest = None if gpu else dest.view(dtype)
        for done in range(0, count, chunk):
            n = min(chunk, count - done)
            values = raw[:n * source.itemsize].view(source)
            self._read_exact(offset + done * source.itemsize, values)
            out = converted[:n * dtype.itemsize].view(dtype) if gpu else typed_dest[done:done + n]
            with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # ml_dtypes warns of overflow itself
                dtypes.assign(out, values)
                overflow = source.kind != "b" and bool((~_finite(out) & _finite(values)).any())
            if overflow:
                keep = (f"load it with dtype_source='saved' to keep {source}, or " if source.kind == "f" else "")
                raise CheckpointError(f"{_quote(self.filename)}: tensor {tensor.key!r} holds values that do not fit "
                                      f"{dtype} (they would become infinite); {keep}give the parameter a wider "
                                      "float dtype (float32)")
            if gpu:
                backend.copy_to_device(dest[done * dtype.itemsize:(done + n) * dtype.itemsize],
                                       converted[:n * dtype.itemsize])


def _finite(values) -> np.ndarray:
    """Which values are finite (bfloat16 through float32: ml_dtypes' isfinite does not see its inf)."""
    return np.isfinite(values.astype(np.float32) if dtypes.is_bfloat16(values.dtype) else values)


def read_staged(read_exact, offset: int, dest, buffer: np.ndarray, put) -> int:
    """Copy ``dest.nbytes`` bytes from the file at ``offset`` into ``dest`` through ``buffer``:
    chunks of at most ``len(buffer)`` bytes, each read into the buffer and handed to
    ``put(dest_chunk, buffer_chunk)`` (a host-to-device copy that returns when done).

    Returns:
        The number of chunks.
    """
    step, nbytes, chunks = len(buffer), dest.nbytes, 0
    for done in range(0, nbytes, step):
        n = min(step, nbytes - done)
        read_exact(offset + done, buffer[:n])
        put(dest[done:done + n], buffer[:n])
        chunks += 1
    return chunks


def write_staged(write_all, source, buffer: np.ndarray, get) -> int:
    """Write the 1-D ``uint8`` device array ``source`` through ``buffer``: chunks of at most
    ``len(buffer)`` bytes, each copied to the buffer by ``get(buffer_chunk, source_chunk)`` and
    written. Returns the number of chunks."""
    step, nbytes, chunks = len(buffer), source.nbytes, 0
    for done in range(0, nbytes, step):
        n = min(step, nbytes - done)
        get(buffer[:n], source[done:done + n])
        write_all(buffer[:n])
        chunks += 1
    return chunks


# --- writing ------------------------------------------------------------------------------------

def _check_filename(filename, where: str) -> str:
    if not isinstance(filename, (str, os.PathLike)) or isinstance(filename, bytes):
        raise ArgumentTypeError(f"{where}: filename must be a path (str or os.PathLike), got {filename!r} "
                                f"({type(filename).__name__})")
    filename = os.fspath(filename)
    if not filename:
        raise ArgumentError(f"{where}: filename must not be empty; pass a path such as 'net.safetensors'")
    return filename


def _write_all(fh, data) -> None:
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        done += fh.write(view[done:])


def write_file(filename, items, metadata: dict) -> None:
    """Write ``items`` (``(key, array)``, NumPy or CuPy, C-contiguous) as a safetensors file.

    The bytes go to a temporary file in the same folder, which is flushed to disk, checked by the
    ``safetensors`` package and then renamed to ``filename``: the real name never holds half a
    file. Tensors are laid out by decreasing item size (so each is aligned to its item size, as
    the ``safetensors`` package lays them out), then in the order given.

    Raises:
        CheckpointError: the file cannot be written (no such folder, no space, no permission);
            ``filename`` is then as it was.
    """
    filename = os.fspath(filename)
    order = sorted(range(len(items)), key=lambda i: -np.dtype(items[i][1].dtype).itemsize)
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for i in order:
        key, array = items[i]
        nbytes = array.size * array.dtype.itemsize
        header[key] = {"dtype": _dtype_code(array.dtype, f"saving {key!r}"), "shape": list(array.shape),
                       "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    folder = os.path.dirname(os.path.abspath(filename))
    temporary = os.path.join(folder, f".{os.path.basename(filename)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise CheckpointError(f"cannot write {_quote(filename)}: {exc.strerror or exc} ({folder!r}); "
                              "check that the folder exists and is writable") from None
    try:
        with os.fdopen(fd, "wb", buffering=0) as fh:
            _write_all(fh, struct.pack("<Q", len(text)) + text)
            buffer = None
            for i in order:
                array = items[i][1]
                raw = array.reshape(-1).view(np.uint8)
                if is_cupy_array(array):
                    if buffer is None:
                        largest = max(items[j][1].nbytes for j in order if is_cupy_array(items[j][1]))
                        buffer = backend.pinned_host_buffer(max(1, min(STAGING_BYTES, largest)))
                    write_staged(lambda b: _write_all(fh, b), raw, buffer, backend.copy_to_host)
                else:
                    _write_all(fh, raw)
            buffer = None
            os.fsync(fh.fileno())
        _check_written(temporary, filename, [items[i][0] for i in order])
        os.replace(temporary, filename)
    except BaseException as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise CheckpointError(f"cannot write {_quote(filename)}: {exc}; nothing was written under that "
                                  "name") from exc
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _check_written(temporary: str, filename: str, keys) -> None:
    """Have the safetensors reference implementation open what was written (the header and that
    the data covers the file exactly: what torch and Hugging Face will check). Skipped where the
    package is missing (installed without its dependencies): gpuinit reads and writes the bytes
    itself, so checkpoints work without it."""
    try:
        from safetensors import safe_open
    except ImportError:  # a dependency of gpuinit, but the file is complete without the check
        return
    try:
        with safe_open(temporary, framework="numpy") as f:
            written = set(f.keys())
    except Exception as exc:
        raise CheckpointError(f"internal error: the safetensors package cannot read what gpuinit wrote for "
                              f"{_quote(filename)} ({exc}); nothing was written under that name") from exc
    if written != set(keys):
        raise CheckpointError(f"internal error: the file written for {_quote(filename)} holds other tensors "
                              "than were saved; nothing was written under that name")


# --- parameters ---------------------------------------------------------------------------------

def _metadata(kind: str, info: dict) -> dict:
    from . import __version__
    from .streams import CONTRACT_VERSION
    metadata = {"gpuinit.version": __version__, "gpuinit.stream_contract": str(CONTRACT_VERSION),
                "gpuinit.keys": kind}
    seeds = {entry["seed"] for entry in info.values()}
    if len(seeds) == 1 and None not in seeds:
        metadata["gpuinit.seed"] = str(seeds.pop())
    if info:
        metadata["gpuinit.parameters"] = json.dumps(info, separators=(",", ":"))
    return metadata


def save_parameters(named, filename, kind: str, where: str) -> None:
    """Save ``named`` (``(key, Parameter)`` pairs) to ``filename``; ``kind`` says what the keys are.

    Raises:
        DeferredInitializationError, UninitializedParameterError: a parameter has no data yet;
        CheckpointError: two parameters under one key, or the file cannot be written. Nothing is
            written then.
    """
    filename = _check_filename(filename, where)
    with lifecycle.access.using():
        items, info, seen = [], {}, {}
        for key, p in named:
            if key in seen:
                raise CheckpointError(f"{where}: parameters {seen[key]!r} and {p.name!r} would both be saved "
                                      f"as {key!r} in {_quote(filename)}; nothing was written")
            seen[key] = p.name
            if not p.initialized:
                cls = DeferredInitializationError if p.requested else UninitializedParameterError
                why = ("its initialization waits for the first forward pass (run one, or load it first)"
                       if p.requested else "initialize() was never called for it")
                raise cls(f"{where}: cannot save {_quote(filename)}: parameter {key!r} ({p.name}) has no data "
                          f"yet: {why}; nothing was written")
            request = p.request
            items.append((key, p.data()))
            info[key] = {"initializer": repr(request.initializer), "role": p.role, "seed": request.seed}
        write_file(filename, items, _metadata(kind, info))


def _file_seeds(f: SafetensorsFile) -> tuple:
    """(the file's seed, {key: seed}) from its metadata, where it records them."""
    seed = f.metadata.get("gpuinit.seed")
    seed = int(seed) if seed is not None and seed.isdigit() else None
    try:
        info = json.loads(f.metadata.get("gpuinit.parameters", "{}"))
        per_key = {k: v.get("seed") for k, v in info.items() if isinstance(v, dict)}
    except (ValueError, AttributeError):
        per_key = {}
    return seed, per_key


def _flags(allow_missing, ignore_extra, cast_dtype, dtype_source, where):
    checks.flag(allow_missing, "allow_missing", where)
    checks.flag(ignore_extra, "ignore_extra", where)
    checks.flag(cast_dtype, "cast_dtype", where)
    checks.choice(dtype_source, ("current", "saved"), "dtype_source", where)


def load_parameters(by_key, filename, device=None, allow_missing=False, ignore_extra=False, cast_dtype=False,
                    dtype_source="current", where="load_parameters", file=None) -> None:
    """Load ``by_key`` (``{key: Parameter}``) from ``filename`` as one materialization.

    See :meth:`gpuinit.nn.Block.load_parameters`.
    """
    _flags(allow_missing, ignore_extra, cast_dtype, dtype_source, where)
    if isinstance(device, (list, tuple)):
        first = device[0] if device else "cpu"
        raise ArgumentError(f"{where}: loads go to one device, got {list(device)!r}; load onto one "
                            f"(device={first!r}), then give the parameters their copies with "
                            "net.collect_params().reset_ctx([...])")
    if device is not None:
        device = as_device(device)
    own = file is None
    f = SafetensorsFile(_check_filename(filename, where)) if own else file
    try:
        name = _quote(f.filename)
        # A shared parameter has a key per place; it is missing only if the file has none of them.
        present = {id(p) for k, p in by_key.items() if k in f.tensors}
        missing = [k for k, p in by_key.items() if id(p) not in present]
        if missing and not allow_missing:
            raise CheckpointError(f"{where}: {name} has no tensor for {len(missing)} parameter(s) of the network: "
                                  f"{_few(missing)}; it holds {_few(f.tensors)}. Set allow_missing=True to load the "
                                  "others and leave these as they are")
        extra = [k for k in f.tensors if k not in by_key]
        if extra and not ignore_extra:
            raise CheckpointError(f"{where}: {name} holds {len(extra)} tensor(s) that are not parameters of the "
                                  f"network: {_few(extra)}; the network's are {_few(by_key)}. Set ignore_extra=True "
                                  "to skip them")
        seed, seeds = _file_seeds(f)
        tensors, entries, seen = [], [], set()
        for key, p in by_key.items():
            tensor = f.tensors.get(key)
            if tensor is None or id(p) in seen:
                continue
            seen.add(id(p))
            tensors.append(tensor)
            key_seed = seeds.get(key)
            entries.append(lifecycle.Stored(p, key, tensor.shape, f.dtype(tensor),
                                            key_seed if isinstance(key_seed, int) else seed))
        lifecycle.load(entries, lambda i, dest, dtype: f.read(tensors[i], dest, dtype), device, cast_dtype,
                       dtype_source, where=f"{where} from {name}")
    finally:
        if own:
            f.close()


def load_block(block, filename, device=None, allow_missing=False, ignore_extra=False, cast_dtype=False,
               dtype_source="current") -> None:
    """``Block.load_parameters``: keys are structural paths; a file written by
    ``ParameterDict.save`` (keys are names) loads by name with the block's prefix restored, as
    Gluon does."""
    where = f"{type(block).__name__}.load_parameters"
    with SafetensorsFile(_check_filename(filename, where)) as f:
        params = block.collect_params()
        if f.metadata.get("gpuinit.keys") == "names":
            by_key = _restored(params, getattr(block, "prefix", ""), where)
        else:  # every place of a shared parameter, as save_parameters (deduplicate=False) writes them
            by_key = dict(block._walk())
        load_parameters(by_key, filename, device, allow_missing, ignore_extra, cast_dtype, dtype_source,
                        where, file=f)


def _restored(params, restore_prefix: str, where: str) -> dict:
    """``{stored key: Parameter}`` for keys that are names with ``restore_prefix`` stripped."""
    checks.text(restore_prefix, "restore_prefix", where, empty=True)
    out = {}
    for name, p in params.items():
        if not name.startswith(restore_prefix):
            if where.endswith("load_parameters"):  # the block's prefix, not an argument
                raise ArgumentError(f"{where}: the file holds parameter names (ParameterDict.save), which load "
                                    f"with the block's prefix {restore_prefix!r}, but parameter {name!r} does "
                                    "not start with it (shared from another block?); load with "
                                    "net.collect_params().load(filename, restore_prefix=...) instead")
            raise ArgumentError(f"{where}: restore_prefix is {restore_prefix!r} but parameter {name!r} does not "
                                "start with it; pass the prefix every parameter's name starts with, or ''")
        out[name[len(restore_prefix):]] = p
    return out


def save_dict(params, filename, strip_prefix="") -> None:
    """``ParameterDict.save``: keys are the parameters' names, ``strip_prefix`` removed (Gluon's)."""
    where = "ParameterDict.save"
    checks.text(strip_prefix, "strip_prefix", where, empty=True)
    named = []
    for name, p in params.items():
        if not name.startswith(strip_prefix):
            raise ArgumentError(f"{where}: strip_prefix is {strip_prefix!r} but parameter {name!r} does not start "
                                "with it; pass a prefix every parameter's name starts with, or ''")
        named.append((name[len(strip_prefix):], p))
    save_parameters(named, filename, "names", where)


def load_dict(params, filename, device=None, allow_missing=False, ignore_extra=False, restore_prefix="",
              cast_dtype=False, dtype_source="current") -> None:
    """``ParameterDict.load``: stored keys are names; ``restore_prefix`` is put back first (Gluon's)."""
    where = "ParameterDict.load"
    load_parameters(_restored(params, restore_prefix, where), filename, device, allow_missing, ignore_extra,
                    cast_dtype, dtype_source, where)


# --- arrays: nd.save / nd.load ------------------------------------------------------------------

def save(filename, data) -> None:
    """Save an array, a list of arrays or a dict of arrays (MXNet's ``nd.save``) as safetensors.

    A list (or one array) is stored under the keys ``"0"``, ``"1"``, ...; a dict under its keys.

    Args:
        filename: the file to write (atomically: see the module's docstring).
        data: a NumPy or CuPy array, or a list, tuple or dict (``str`` keys) of them; any
            float, integer or bool dtype (bfloat16 with ``ml_dtypes``).

    Raises:
        ArgumentTypeError: something that is not an array, a key that is not a string, a dtype
            safetensors cannot hold; CheckpointError: the file cannot be written.

    Example:
        >>> import os, tempfile, numpy as np
        >>> from gpuinit import nd
        >>> path = os.path.join(tempfile.mkdtemp(), "x.safetensors")
        >>> nd.save(path, [np.arange(3.0), np.ones((2, 2), np.float16)])
        >>> [a.dtype.name for a in nd.load(path)]
        ['float64', 'float16']
    """
    where = "nd.save"
    filename = _check_filename(filename, where)
    if isinstance(data, dict):
        container, pairs = "dict", list(data.items())
        for key, _ in pairs:
            if not isinstance(key, str):
                raise ArgumentTypeError(f"{where}: dict keys must be strings, got {key!r} ({type(key).__name__})")
    elif isinstance(data, (list, tuple)):
        container, pairs = "list", [(str(i), a) for i, a in enumerate(data)]
    else:
        container, pairs = "list", [("0", data)]
    items = []
    for key, array in pairs:
        if not (hasattr(array, "shape") and hasattr(array, "dtype") and hasattr(array, "reshape")) \
                or type(array).__module__.startswith("gpuinit.meta"):
            raise ArgumentTypeError(f"{where}: {key!r} must be a NumPy or CuPy array, got {type(array).__name__}; "
                                    "wrap values with gpuinit.nd.array(...)")
        _dtype_code(array.dtype, f"{where}: {key!r}")
        xp = backend.array_module_of(array)
        items.append((key, xp.ascontiguousarray(array)))
    metadata = {"gpuinit.version": _version(), "gpuinit.keys": "arrays", "gpuinit.container": container}
    write_file(filename, items, metadata)


def _version() -> str:
    from . import __version__
    return __version__


def load(filename):
    """Load what :func:`save` wrote (MXNet's ``nd.load``): a list comes back as a list, a dict as a
    dict, as NDArrays (NumPy arrays). Any other safetensors file comes back as a dict, in its header's order.

    Each array is read from the file straight into its own memory (no second copy).

    Raises:
        CheckpointNotFoundError, CheckpointError: as :class:`SafetensorsFile`.
    """
    with SafetensorsFile(_check_filename(filename, "nd.load")) as f:
        out = {}
        for key, tensor in f.tensors.items():
            array = np.empty(tensor.shape, f.dtype(tensor))
            f.read(tensor, array.reshape(-1).view(np.uint8))
            out[key] = as_ndarray(array)
        if f.metadata.get("gpuinit.container") == "list":
            try:
                order = sorted(out, key=int)
            except ValueError:
                return out
            if order == [str(i) for i in range(len(order))]:
                return [out[k] for k in order]
        return out


# --- a rank's slices ----------------------------------------------------------------------------

def load_shard(filename, rank: int, world_size: int, net=None, device=None, split: str = "flat",
               cast_dtype: bool = False) -> dict:
    """Rank ``rank``'s slice of each tensor of ``filename``, reading only those bytes.

    The slices are the ones :func:`gpuinit.shard` makes (``split="flat"``: a contiguous range of
    each tensor's flattened elements), so a model saved whole can be resumed sharded. Each slice
    is a contiguous range of the file, read straight into one arena per device: the bytes read
    and the memory taken are this rank's share of the file.

    Args:
        filename: a safetensors file (written by ``save_parameters`` or anything else).
        rank, world_size: which slice, as for :func:`gpuinit.shard`.
        net: a Block or ParameterDict: then only its parameters are read (keys: structural paths),
            each must be in the file with a shape that agrees with its known dimensions, and the
            slices take its device. None: every tensor, as stored.
        device: where the slices go (default: each parameter's device, else the default device).
        split: ``"flat"`` (:func:`gpuinit.shard`'s default split), or any name in :data:`SPLITS`
            (``"dim0"`` where :mod:`gpuinit.sharding` has it).
        cast_dtype: with ``net``, convert stored dtypes other than its parameters' (else refused).

    Returns:
        ``{key: 1-D array}``.

    Raises:
        ArgumentError: a bad rank, world size or split; CheckpointError: a bad file, or a
            parameter of ``net`` missing from it; ShapeError: a shape that disagrees.
    """
    where = "load_shard"
    hint = "pass integers with 0 <= rank < world_size"
    world_size = checks.positive_int(world_size, "world_size", where, hint=hint)
    rank = checks.integer(rank, "rank", where, hint=hint)
    if not 0 <= rank < world_size:
        raise ArgumentError(f"{where}: rank must be an integer in [0, {world_size}), got {rank!r}; {hint}")
    checks.choice(split, tuple(SPLITS), "split", where)
    checks.flag(cast_dtype, "cast_dtype", where)
    ranges = SPLITS[split]
    target = as_device(device) if device is not None else None
    with SafetensorsFile(_check_filename(filename, where)) as f:
        name = _quote(f.filename)
        wanted = []  # (key, tensor, dtype, device)
        if net is None:
            here = target if target is not None else as_device(None)
            wanted = [(key, t, f.dtype(t), here) for key, t in f.tensors.items()]
        else:
            params = net.collect_params() if hasattr(net, "collect_params") else net
            for pname, p in params.items():
                key = params.path_of(pname)
                tensor = f.tensors.get(key)
                if tensor is None:
                    raise CheckpointError(f"{where}: {name} has no tensor {key!r} for parameter {pname!r}; it holds "
                                          f"{_few(f.tensors)}")
                lifecycle.loaded_shape(p, key, tensor.shape, f"{where} from {name}")
                dtype = lifecycle.loaded_dtype(p, key, f.dtype(tensor), cast_dtype, "current", f"{where} from {name}")
                here = target if target is not None else p.device if p.device is not None else as_device(None)
                wanted.append((key, tensor, dtype, here))
        bounds = [ranges(t.shape, rank, world_size) for _, t, _, _ in wanted]
        arrays = lifecycle.read_slices(
            [d for _, _, _, d in wanted], [stop - start for start, stop in bounds], [dt for _, _, dt, _ in wanted],
            lambda i, dest: f.read(wanted[i][1], dest, wanted[i][2], first=bounds[i][0],
                                   count=bounds[i][1] - bounds[i][0]))
    return {key: array for (key, _, _, _), array in zip(wanted, arrays)}
