"""Throughput of classifying a folder of JPEGs, decoding included, in images per second.

    python bench/bench_classify.py [--images 2000] [--threads 2] [--sweep-batch]

Generates (once, cached in the temp dir) a folder of JPEGs of mixed sizes,
320x240 up to 1600x1200 (shapes pictures upscaled, fixed seed), exports a
random MobileNetV2 1.0 at 224, then times on the same machine, one after the
other:

  (a) mbv2-engine's CLI path (mbv2_engine.collection.classify_paths: decode
      pool with Image.draft, batches, the engine), in-process;
  (b) a PyTorch DataLoader loop (2 workers, Pillow full decode, the same
      resize/crop/normalise, batch 32) into the same model in channels_last;
  (c) the engine driven naively: Engine.classify(path) one image at a time.

`--sweep-batch` also times (a) at several --batch values (how DEFAULT_BATCH was chosen).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mbv2_engine import Engine, collection  # noqa: E402
from mbv2_engine.preprocess import load_image  # noqa: E402

SEED = 0
SIZES = [(320, 240), (640, 480), (800, 600), (1024, 768), (1280, 960), (1600, 1200)]


def make_images(n: int, seed: int = SEED) -> Path:
    from mbv2_engine.shapes import make_dataset

    d = Path(tempfile.gettempdir()) / f"mbv2_bench_classify_{seed}"
    d.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [SIZES[i] for i in rng.integers(0, len(SIZES), n)]
    flips = rng.integers(0, 2, n)
    missing = [i for i in range(n) if not (d / f"img{i:05d}.jpg").is_file()]
    if missing:
        print(f"writing {len(missing)} JPEGs to {d} ...", file=sys.stderr, flush=True)
        pics, _ = make_dataset(n, seed, 96)
        for i in missing:
            w, h = sizes[i] if not flips[i] else sizes[i][::-1]  # some portrait
            img = Image.fromarray(pics[i]).resize((w, h), Image.BILINEAR)
            tmp = d / f"img{i:05d}.tmp"
            img.save(tmp, "JPEG", quality=90)
            os.replace(tmp, d / f"img{i:05d}.jpg")
    return d


def model_path() -> Path:
    from mbv2_engine.export import export_random

    path = Path(tempfile.gettempdir()) / "mbv2_bench_classify_m224.npz"
    if not path.is_file():
        print(f"exporting a random MobileNetV2 1.0 at 224 to {path} ...", file=sys.stderr, flush=True)
        export_random(str(path) + ".tmp.npz", seed=0, progress=False)
        os.replace(str(path) + ".tmp.npz", path)
    return path


class NullWriter:
    def __init__(self):
        self.n = 0

    def results(self, rows):
        self.n += len(rows)

    def error(self, path, reason):
        raise RuntimeError(f"{path}: {reason}")

    def close(self):
        pass


def bench_cli(model, paths, threads, batch=collection.DEFAULT_BATCH, workers=None):
    engine = Engine.load(model, threads=threads)
    s = collection.classify_paths(engine, paths, NullWriter(), top_k=5, batch=batch, workers=workers,
                                  progress=False)
    return s.done / s.wall_s, s.decode_s / (s.decode_s + s.engine_s), s


def bench_naive(model, paths, threads):
    engine = Engine.load(model, threads=threads)
    decode = run = 0.0
    t0 = time.perf_counter()
    for p in paths:
        t = time.perf_counter()
        x = engine.preprocess(p)
        t1 = time.perf_counter()
        engine.classify(x, top_k=5)
        decode += t1 - t
        run += time.perf_counter() - t1
    wall = time.perf_counter() - t0
    return len(paths) / wall, decode / (decode + run)


class _Dataset:
    def __init__(self, paths, meta):
        self.paths, self.meta = paths, meta

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torch

        pp = self.meta["preprocess"]  # the same resize, crop and normalisation; a full Pillow decode
        x = load_image(self.paths[i], tuple(self.meta["input_size"]), pp["crop_fraction"], pp["mean"], pp["std"],
                       draft=False)
        return torch.from_numpy(x)


def bench_torch(model, paths, threads, workers=2, batch=32):
    import torch

    from mbv2_engine import format as wformat
    from mbv2_engine.demo import torch_model_from_file

    torch.set_num_threads(threads)
    net = torch_model_from_file(model).eval().to(memory_format=torch.channels_last)
    _, meta, _ = wformat.load(model)
    loader = torch.utils.data.DataLoader(_Dataset(paths, meta), batch_size=batch, num_workers=workers)
    wait = run = 0.0
    n = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        t = time.perf_counter()
        for x in loader:
            t1 = time.perf_counter()
            wait += t1 - t
            probs = torch.softmax(net(x.contiguous(memory_format=torch.channels_last)), 1)
            torch.topk(probs, 5)
            n += len(x)
            t = time.perf_counter()
            run += t - t1
    wall = time.perf_counter() - t0
    return n / wall, wait / (wait + run)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sweep-batch", action="store_true", help="also time (a) at batch 1, 4, 8, 16, 32")
    ap.add_argument("--skip", default="", help="comma-separated of a,b,c to leave out")
    args = ap.parse_args(argv)
    folder = make_images(args.images)
    paths = [str(folder / f"img{i:05d}.jpg") for i in range(args.images)]
    model = model_path()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "unknown CPU") if os.path.exists("/proc/cpuinfo") else "unknown CPU"
    print(f"{args.images} JPEGs (320x240 .. 1600x1200), MobileNetV2 1.0 at 224, {args.threads} threads, "
          f"{len(os.sched_getaffinity(0))} CPUs, {cpu}")
    for p in paths[:64]:  # warm the page cache
        Path(p).read_bytes()
    rows = []
    if "a" not in args.skip:
        rate, share, s = bench_cli(model, paths, args.threads)
        rows.append((f"(a) mbv2-engine classify (batch {collection.DEFAULT_BATCH}, {s.workers} decode threads, "
                     f"draft)", rate, share))
    if "b" not in args.skip:
        rate, share = bench_torch(model, paths, args.threads)
        rows.append(("(b) PyTorch DataLoader, 2 workers, batch 32, channels_last", rate, share))
    if "c" not in args.skip:
        rate, share = bench_naive(model, paths, args.threads)
        rows.append(("(c) Engine.classify one image at a time", rate, share))
    print(f"{'path':<72}{'img/s':>9}{'decode share':>14}")
    for name, rate, share in rows:
        print(f"{name:<72}{rate:>9.1f}{100 * share:>13.0f}%")
    names = [r[0][:3] for r in rows]
    if "(a)" in names and "(b)" in names:
        print(f"(a) / (b): {rows[names.index('(a)')][1] / rows[names.index('(b)')][1]:.2f}x")
    if args.sweep_batch:
        sub = paths[: min(len(paths), 600)]
        print(f"batch sweep of (a) on {len(sub)} images:")
        for b in (1, 4, 8, 16, 32):
            rate, share, _ = bench_cli(model, sub, args.threads, batch=b)
            print(f"  batch {b:>2}: {rate:7.1f} img/s, decode share {100 * share:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
