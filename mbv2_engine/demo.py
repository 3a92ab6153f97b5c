"""`mbv2-engine demo`: the whole story on a fresh machine with no internet.

Export a random calibrated model, classify a drawn sample picture, check the
engine against the PyTorch model it was exported from, and time both side by
side (interleaved, same inputs, same thread count).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .errors import Mbv2Error
from .tolerances import violations


def draw_sample_image(path: Path, size=(320, 240)) -> Path:
    """A deterministic picture (sky, sun, hills, a house) so the demo needs no download."""
    w, h = size
    img = Image.new("RGB", size)
    d = ImageDraw.Draw(img)
    for y in range(h):
        d.line([(0, y), (w, y)], fill=(90 + y // 4, 150 + y // 6, 235))
    d.ellipse([w - 90, 20, w - 30, 80], fill=(255, 215, 60))
    d.polygon([(0, h), (0, 150), (120, 110), (240, 160), (w, 130), (w, h)], fill=(60, 140, 60))
    d.rectangle([70, 120, 150, 190], fill=(180, 60, 50))
    d.polygon([(60, 120), (110, 80), (160, 120)], fill=(100, 40, 30))
    d.rectangle([100, 150, 120, 190], fill=(70, 50, 30))
    img.save(path)
    return path


def _import_torch():
    try:
        import torch
    except ImportError as e:
        raise Mbv2Error("the demo compares against PyTorch: pip install 'mbv2-engine[torch]'") from e
    return torch


def time_interleaved(fns: dict, repeat: int) -> dict:
    """Median seconds per call of each function, calls interleaved so drift hits all alike."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up: plans, allocations, lazy init
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def run_demo(out_dir, seed: int = 0, repeat: int = 10, threads: int = 1, batch: int = 4) -> int:
    torch = _import_torch()
    from .engine import Engine
    from .export import random_model, write_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"[1/4] exporting a random calibrated MobileNetV2 1.0 (seed {seed}) ...")
    model = random_model(seed=seed, width_mult=1.0, num_classes=1000, size=(224, 224))
    model_path = write_model(model, out / "mbv2_random.npz", source={"kind": "random", "seed": seed})
    image_path = draw_sample_image(out / "sample.png")
    engine = Engine.load(model_path, threads=threads)
    plan = engine.plan
    print(f"      {model_path}; arena {plan.arena_bytes:,} bytes + {plan.ring_bytes:,} of ring buffers, "
          f"ISA {plan.isa}")

    print(f"[2/4] classifying {image_path} (random weights: the classes mean nothing)")
    for p in engine.classify(image_path, top_k=5):
        print(f"      {p.probability:8.4f}  {p.label}")

    print(f"[3/4] checking against the PyTorch model on the sample and a random batch of {batch}")
    rng = np.random.default_rng(seed)
    batch_x = rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)
    image_x = engine.preprocess(image_path)
    ok = True
    torch.set_num_threads(threads)
    with torch.inference_mode():
        for name, x in (("sample image", image_x), ("random batch", batch_x)):
            ours = engine.run(x)
            ref = model(torch.from_numpy(x)).numpy()
            same = bool((ours.argmax(1) == ref.argmax(1)).all())
            off = int(violations(ours, ref, "network_f32_vs_torch").sum())
            ok &= same and off == 0
            print(f"      {name}: top-1 {'agrees' if same else 'DIFFERS'}, max |error| "
                  f"{np.abs(ours - ref).max():.2e} (max |logit| {np.abs(ref).max():.2f}), "
                  f"{off} logits outside the tolerance table's network_f32_vs_torch")

    print(f"[4/4] timing batch 1 at 224x224, {threads} thread(s), median of {repeat} interleaved runs")
    x1 = batch_x[:1]
    tx1 = torch.from_numpy(x1)
    with torch.inference_mode():
        med = time_interleaved({"mbv2-engine": lambda: engine.run(x1),
                                 "PyTorch eager": lambda: model(tx1)}, repeat)
    gflop = 2 * plan.macs / 1e9
    for name, t in med.items():
        print(f"      {name:<14} {t * 1e3:8.2f} ms  {gflop / t:7.1f} GFLOP/s")
    print("demo passed" if ok else "demo FAILED: the engine disagrees with PyTorch")
    return 0 if ok else 1
