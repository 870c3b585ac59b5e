"""Static sm_90 SASS instruction counts of the fill kernels: what one thread spends per group.

No GPU needed: ``nvcc -cubin`` compiles the kernels and ``cuobjdump -sass`` lists them. For each
kernel, the control-flow graph of its grid-stride loop gives:

- ``kernel``: every instruction of the kernel (all paths, the element-by-element fallback too);
- ``hot``: the instructions one thread runs per whole, aligned group while it stays in one job:
  the shortest way once around the loop that goes through the wide store (Philox, the transform,
  the stores, the loop's own bookkeeping);
- ``enter``: what entering another job adds (the shortest way around through the loads of the
  job table, less ``hot``); a thread pays it once per job it works in, so only parameters smaller
  than the grid's stride pay it at every group;
- ``per 32 B``: ``hot`` per 32 bytes of output (a group is 32 bytes for float32 uniform and
  normal, 16 for float16/bfloat16, 32 for float64 and every truncated normal).

Needs nvcc and cuobjdump (``pip download nvidia-cuda-cuobjdump`` has one). Usage:

    python3 scripts/sass_counts.py [--cuobjdump PATH] [--source FILE.cu] [-D NAME ...]
"""

from __future__ import annotations

import argparse
import heapq
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNELS = ROOT / "gpuinit" / "kernels"
TYPES = {"float32": "f", "float16": "t", "bfloat16": "NS_4bf16E", "float64": "d"}
FAMILIES = {"constant": 0, "uniform": 1, "normal": 2, "truncated_normal": 3}
ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
LINE = re.compile(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);")
WIDE_STORE = re.compile(r"\bSTG?\.E\.(128|64)\b")
TABLE_LOAD = re.compile(r"\bLDG?\.E\b")


def parse(sass: str) -> dict:
    """``{kernel name: [(address, text), ...]}`` from cuobjdump -sass output."""
    out, name = {}, None
    for line in sass.splitlines():
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            name = m.group(1)
            out[name] = []
            continue
        m = LINE.match(line)
        if m and name:
            out[name].append((int(m.group(1), 16), m.group(2).strip()))
    return out


def real(code):
    """Instructions without the padding after the last EXIT (NOPs and the BRA to itself)."""
    last_exit = max(i for i, (_, t) in enumerate(code) if "EXIT" in t)
    return code[:last_exit + 1]


def target(text: str) -> int | None:
    m = re.search(r"\bBRA\b.*?(0x[0-9a-f]+)", text)
    return int(m.group(1), 16) if m else None


def loop_paths(code) -> tuple[int, int]:
    """``(hot, enter)`` for a kernel's grid-stride loop (see the module docstring)."""
    addrs = [a for a, _ in code]
    back = [(a, target(t)) for a, t in code if target(t) is not None and target(t) < a]
    tail_addr, head = max(back, key=lambda b: b[0] - b[1])  # the outermost loop: the grid stride
    body = [(a, t) for a, t in code if head <= a <= tail_addr]
    starts = {head} | {target(t) for _, t in body if target(t) is not None and head <= target(t) <= tail_addr}
    starts |= {addrs[addrs.index(a) + 1] for a, t in body if target(t) is not None or "EXIT" in t if a != tail_addr}
    blocks, current = {}, None
    for a, t in body:
        if a in starts:
            current = a
            blocks[a] = []
        blocks[current].append((a, t))
    order = sorted(blocks)

    def succ(b):
        a, t = blocks[b][-1]
        nxt = order[order.index(b) + 1] if order.index(b) + 1 < len(order) else None
        tgt = target(t)
        out = []
        if tgt is not None and head < tgt <= tail_addr and tgt > a:
            out.append(tgt)
        unconditional = (tgt is not None and not t.startswith("@")) or ("EXIT" in t and not t.startswith("@"))
        if nxt is not None and not unconditional:
            out.append(nxt)
        return out

    end = max(b for b in blocks if any(a == tail_addr for a, _ in blocks[b]))
    wide = lambda b: any(WIDE_STORE.search(t) for _, t in blocks[b])  # noqa: E731
    hot = shortest(blocks, succ, head, end, wide)
    through_loads = [shortest(blocks, succ, head, lb) + shortest(blocks, succ, lb, end, wide) - len(blocks[lb])
                     for lb in blocks if any(TABLE_LOAD.search(t) for _, t in blocks[lb])]
    return hot, min(through_loads) - hot


def shortest(blocks, succ, start, stop, must=None) -> int:
    """Fewest instructions on a path of blocks from ``start`` to ``stop`` (both counted) that goes
    through a block where ``must(block)`` is true, if ``must`` is given."""
    heap = [(len(blocks[start]), start, must is None or must(start))]
    best = {}
    while heap:
        cost, b, seen = heapq.heappop(heap)
        if b == stop and seen:
            return cost
        if best.get((b, seen), 1 << 30) <= cost:
            continue
        best[(b, seen)] = cost
        for s in succ(b):
            heapq.heappush(heap, (cost + len(blocks[s]), s, seen or (must is not None and must(s))))
    raise RuntimeError("no such path in the loop")


def group_bytes(dtype: str, family: str) -> int:
    elements = 8 if family != "truncated_normal" and ITEMSIZE[dtype] <= 4 else 4
    return elements * ITEMSIZE[dtype]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuobjdump", default=shutil.which("cuobjdump") or "cuobjdump")
    parser.add_argument("--source", default=str(KERNELS / "init_kernels.cu"))
    parser.add_argument("-D", dest="defines", action="append", default=[])
    args = parser.parse_args()
    if shutil.which("nvcc") is None:
        print("sass_counts: nvcc not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        cubin = pathlib.Path(tmp) / "k.cubin"
        subprocess.run(["nvcc", "-cubin", "-arch=sm_90", "-std=c++17", "--fmad=false", f"-I{KERNELS}",
                        *[f"-D{d}" for d in args.defines], "-o", str(cubin), args.source], check=True)
        kernels = parse(subprocess.run([args.cuobjdump, "-sass", str(cubin)], check=True, capture_output=True,
                                       text=True).stdout)
    print(f"{'dtype':<9} {'family':<17} {'kernel':>7} {'hot':>5} {'enter':>6} {'per 32 B':>9}")
    for dtype, t in TYPES.items():
        for family, f in FAMILIES.items():
            (name,) = [n for n in kernels if f"init_fillI{t}Li{f}E" in n]
            code = real(kernels[name])
            hot, enter = loop_paths(code)
            print(f"{dtype:<9} {family:<17} {len(code):7d} {hot:5d} {enter:6d} "
                  f"{hot * 32 / group_bytes(dtype, family):9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
