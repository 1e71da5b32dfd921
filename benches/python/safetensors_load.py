"""Loading a 1 GiB .safetensors file into torch: `dlpack.load_safetensors` + `torch.from_dlpack`
(a memory map, no copy) against `safetensors.torch.load_file` (reads every tensor into memory
torch owns) and `safetensors.safe_open(framework="pt")` + `get_tensor` for every name.

Run by `cargo xtask bench --safetensors` (or directly with the venv's python). The file (64
float32 tensors of 16 MiB, 1 GiB in all) is written under a temporary folder and deleted.

The page cache is WARM: the file was just written and is read once before timing, so no path
waits on the disk; a cold cache adds the same disk reads to both, at first touch for the map.
Two measures per path: "load" (the dict of torch tensors, data untouched: the map's pages are
not even faulted in) and "load + read" (then the sum of every tensor, which makes the map fault
every page in), so the zero-copy saving is not only deferred work. Prints the median of
--repeat runs and the ratios.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import dlpack

TENSORS = 64
ELEMENTS = (1 << 30) // 4 // TENSORS  # float32: 16 MiB each, 1 GiB in all


def ours(path):
    return {k: torch.from_dlpack(v) for k, v in dlpack.load_safetensors(path).items()}


def theirs_load_file(path):
    return load_file(path)


def theirs_safe_open(path):
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


PATHS = [("dlpack.load_safetensors", ours), ("safetensors.torch.load_file", theirs_load_file),
         ("safe_open(framework='pt')", theirs_safe_open)]


def timed(fn, path, read):
    gc.collect()
    t0 = time.perf_counter()
    tensors = fn(path)
    if read:
        total = sum(float(t.sum()) for t in tensors.values())
    else:
        total = len(tensors)
    dt = time.perf_counter() - t0
    del tensors
    gc.collect()
    return dt, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    folder = tempfile.mkdtemp(prefix="dlpack-bench-st-")
    try:
        path = os.path.join(folder, "model.safetensors")
        gen = torch.Generator().manual_seed(0)
        save_file({f"layers.{i}.weight": torch.rand(ELEMENTS, generator=gen)
                   for i in range(TENSORS)}, path)
        size = os.path.getsize(path)
        with open(path, "rb") as f:  # warm the page cache
            while f.read(1 << 24):
                pass
        print(f"file: {size / (1 << 30):.3f} GiB, {TENSORS} float32 tensors; warm page cache; "
              f"median of {args.repeat}; torch {torch.__version__}, numpy {np.__version__}")
        for read in (False, True):
            label = "load + read" if read else "load"
            medians = {}
            sums = set()
            for name, fn in PATHS:
                runs = []
                for _ in range(args.repeat):
                    dt, total = timed(fn, path, read)
                    runs.append(dt)
                    sums.add(total)
                medians[name] = statistics.median(runs)
            assert len(sums) == 1, f"the paths disagree: {sums}"
            base = medians[PATHS[0][0]]
            for name, m in medians.items():
                print(f"  {label:<12} {name:<28} {m * 1e3:10.3f} ms   ours / this = "
                      f"{base / m:.4f}")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
