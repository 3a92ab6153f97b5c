"""Train the small MobileNetV2 that ships as mbv2_engine/data/shapes.npz.

    python examples/train_shapes.py --out mbv2_engine/data/shapes.npz

The data is drawn, not downloaded: `mbv2_engine.shapes.make_dataset` (ten
classes of shapes, seed `TRAIN_SEED`), preprocessed exactly as the engine
preprocesses a picture (`shapes.to_batch`, torchvision's mean/std, centre crop
0.875). The network is the package's own torchvision-layout
`mbv2_engine.torch_model.MobileNetV2` at width 0.35 and 64x64, trained with
AdamW and a one-cycle schedule, then BN-folded and written by
`mbv2_engine.export.write_model`.

Reproducible: every random number comes from `--seed` (weights, shuffling,
flips and turns) or from the data's own seed, and torch runs with
deterministic algorithms on a fixed thread count (`--threads`, default 1: a
sum split over another thread count may round differently), so the same torch
version on the same thread count writes the same weights bit for bit
(tests/test_demo.py checks a few steps of it). About two and a half minutes on
one free CPU core; one thread also keeps it steady on a busy machine.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from mbv2_engine import shapes
from mbv2_engine.export import write_model
from mbv2_engine.torch_model import MobileNetV2

WIDTH = 0.35
DEFAULTS = dict(seed=0, n_train=12000, epochs=4, batch=64, lr=4e-3, weight_decay=5e-4, threads=1)


def set_deterministic(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def train(n_train: int = DEFAULTS["n_train"], epochs: int = DEFAULTS["epochs"], batch: int = DEFAULTS["batch"],
          lr: float = DEFAULTS["lr"], weight_decay: float = DEFAULTS["weight_decay"], seed: int = DEFAULTS["seed"],
          threads: int = DEFAULTS["threads"], max_steps: int | None = None,
          progress: bool = True) -> MobileNetV2:
    """A trained MobileNetV2 (eval mode). `max_steps` stops early (for the reproducibility test)."""
    set_deterministic(seed, threads)
    images, labels = shapes.make_dataset(n_train, shapes.TRAIN_SEED)
    x = torch.from_numpy(shapes.to_batch(images))
    y = torch.from_numpy(labels)
    model = MobileNetV2(WIDTH, len(shapes.CLASSES), dropout=0.0)
    steps_per_epoch = n_train // batch
    total = steps_per_epoch * epochs if max_steps is None else min(max_steps, steps_per_epoch * epochs)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.2)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    bar = tqdm(total=total, desc="training", disable=not progress, unit="step")
    step = 0
    while step < total:
        order = torch.randperm(n_train, generator=gen)
        for k in range(steps_per_epoch):
            if step == total:
                break
            idx = order[k * batch:(k + 1) * batch]
            xb = x[idx]
            # Flips and quarter turns keep every class what it is: cheap extra variety.
            if torch.rand((), generator=gen) < 0.5:
                xb = xb.flip(3)
            xb = torch.rot90(xb, int(torch.randint(4, (), generator=gen)), (2, 3))
            loss = F.cross_entropy(model(xb), y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            bar.set_postfix(loss=f"{loss.item():.3f}")
            bar.update()
    bar.close()
    return model.eval()


@torch.no_grad()
def accuracy(model: MobileNetV2, n: int = 500, seed: int = shapes.HELD_OUT_SEED) -> float:
    images, labels = shapes.make_dataset(n, seed)
    pred = model(torch.from_numpy(shapes.to_batch(images))).argmax(1).numpy()
    return float((pred == labels).mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="mbv2_engine/data/shapes.npz", help="weight file to write")
    for name, value in DEFAULTS.items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    model = train(args.n_train, args.epochs, args.batch, args.lr, args.weight_decay, args.seed, args.threads,
                  progress=not args.quiet)
    seconds = time.perf_counter() - t0
    acc = accuracy(model)
    source = {"kind": "trained", "script": "examples/train_shapes.py", "data": "mbv2_engine.shapes",
              "data_seed": shapes.TRAIN_SEED, "seed": args.seed, "n_train": args.n_train, "epochs": args.epochs,
              "batch": args.batch, "lr": args.lr, "weight_decay": args.weight_decay, "threads": args.threads,
              "torch": torch.__version__, "held_out_accuracy": acc}
    path = write_model(model, args.out, source=source, labels=list(shapes.CLASSES),
                       size=(shapes.SIZE, shapes.SIZE))
    print(f"trained in {seconds:.0f} s ({args.threads} thread(s)); held-out accuracy {acc:.1%} on 500 pictures "
          f"of seed {shapes.HELD_OUT_SEED}; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
