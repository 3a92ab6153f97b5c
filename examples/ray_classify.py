"""Classify a directory (or bucket) of images with Ray Data and write the predictions as Parquet.

    pip install "mbv2-engine[ray]"
    python examples/ray_classify.py PICTURES/ --out predictions/             # ray.data.read_images
    python examples/ray_classify.py PICTURES/ --out predictions/ --robust    # corrupt files -> error rows
    python examples/ray_classify.py demo-pictures/ --demo 200 --out predictions/   # draw 200 shapes first

The default model is the shapes model that ships with the package
(mbv2_engine/data/shapes.npz); `--model` takes any mbv2-engine weight file.
Each of `--actors` actors loads the engine once and runs it on `--threads`
threads, with as many CPUs reserved for it. `ray.init()` joins the cluster
RAY_ADDRESS names, else starts a local one (`--num-cpus` caps it).

`ray.data.read_images` decodes the files itself and fails the whole read on
one it cannot decode. `--robust` reads the raw bytes instead
(`ray.data.read_binary_files`) and lets the classifier decode each file: a
file it cannot decode gets a row with an `error` and no prediction, and the
rest of the job completes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

SHAPES_MODEL = Path(__file__).resolve().parents[1] / "mbv2_engine" / "data" / "shapes.npz"


def write_demo_pictures(directory: Path, n: int, corrupt: bool) -> None:
    """n held-out shapes pictures at a few sizes, PNG and JPEG, and with `corrupt` a corrupt file."""
    from PIL import Image

    from mbv2_engine.shapes import CLASSES, HELD_OUT_SEED, make_dataset
    directory.mkdir(parents=True, exist_ok=True)
    for k, size in enumerate((48, 64, 128)):
        images, labels = make_dataset(n // 3 + (k < n % 3), HELD_OUT_SEED + k, size)
        for i, (img, label) in enumerate(zip(images, labels)):
            ext = "png" if i % 2 else "jpg"
            Image.fromarray(img).save(directory / f"{CLASSES[label]}-{size}-{i:04d}.{ext}")
    if corrupt:
        (directory / "corrupt.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", help="a directory, file or URI (s3://, gs://, ...) Ray Data can read")
    ap.add_argument("--out", required=True, help="directory (or URI) the Parquet files are written to")
    ap.add_argument("--model", default=str(SHAPES_MODEL), help="weight file (default: the shipped shapes model)")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--actors", type=int, default=1, help="engines running at once")
    ap.add_argument("--threads", type=int, default=1, help="threads (and CPUs) per actor")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--robust", action="store_true",
                    help="read raw bytes and decode per file: corrupt files get an error row")
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray instance")
    ap.add_argument("--demo", type=int, default=0, metavar="N",
                    help="first write N shapes pictures into the images directory (with --robust, "
                         "and a corrupt file)")
    args = ap.parse_args(argv)

    import ray
    import ray.data

    from mbv2_engine.ray import classify_dataset

    if args.demo:
        write_demo_pictures(Path(args.images), args.demo, corrupt=args.robust)
    ray.init(num_cpus=args.num_cpus)
    try:
        start = time.perf_counter()
        if args.robust:
            ds = ray.data.read_binary_files(args.images, include_paths=True)
        else:
            ds = ray.data.read_images(args.images, mode="RGB", include_paths=True)
        preds = classify_dataset(ds, args.model, top_k=args.top_k, actors=args.actors, threads=args.threads,
                                 batch_size=args.batch_size)
        preds.write_parquet(args.out)
        seconds = time.perf_counter() - start

        result = ray.data.read_parquet(args.out).select_columns(["path", "label", "probability", "error"])
        rows = result.take_all()
        failed = [r for r in rows if r["error"] is not None]
        print(f"{len(rows)} images in {seconds:.1f} s ({len(rows) / seconds:.0f} images/s, Ray start-up "
              f"not counted), {len(failed)} could not be classified; Parquet in {args.out}")
        for r in sorted(rows, key=lambda r: r["path"])[:5]:
            print(f"  {r['path']}: {r['label']} ({r['probability']:.3f})" if r["error"] is None
                  else f"  {r['path']}: {r['error']}")
        for r in failed[:5]:
            print(f"  error: {r['path']}: {r['error']}")
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
