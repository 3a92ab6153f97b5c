"""`mbv2-engine demo`: the whole story on a fresh machine with no internet.

First the trained model that ships with the package (data/shapes.npz, ten
classes of drawn shapes, trained by examples/train_shapes.py): classify
held-out pictures drawn with a seed the training never saw, with the engine
and with PyTorch running the same weights, and compare accuracy, predictions
and speed. Then the full-size network: export a random calibrated model,
classify a drawn sample picture, check the engine against the PyTorch model it
was exported from, and time both side by side (interleaved, same inputs, same
thread count).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .errors import Mbv2Error
from .tolerances import violations

SHAPES_MODEL = Path(__file__).with_name("data") / "shapes.npz"
MIN_ACCURACY = 0.95  # the shipped model scores above this on held-out pictures (tests/test_demo.py)
SAVED_PICTURES = 10


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


def torch_model_from_file(path):
    """A torch MobileNetV2 (eval mode) computing what the weight file computes, from its folded weights.

    Every convolution gets the file's folded weight; its BatchNorm becomes the
    file's bias alone (mean 0, variance 1, scale 1, eps 0: an exact identity
    plus the bias), so PyTorch runs exactly the weights the engine runs.
    """
    torch = _import_torch()
    from . import format as wformat
    from .export import conv_bn_pairs, torch_shapes
    from .torch_model import MobileNetV2

    arrays, meta, arch = wformat.load(path)
    if not isinstance(meta["padding"], str) or meta.get("hidden") or meta.get("activation", "none") != "none":
        raise Mbv2Error(f"{path}: only plain MobileNetV2 files (one padding rule, no hidden layers, no output "
                        f"activation) map onto the torch model")
    model = MobileNetV2(arch.width_mult, arch.num_classes, padding=meta["padding"], eps=0.0)
    shapes = torch_shapes(arch)
    state = {}
    for name, conv, bn in conv_bn_pairs(arch):
        weight = torch.from_numpy(np.array(arrays[name + ".weight"], np.float32))
        state[conv + ".weight"] = weight.reshape(shapes[conv + ".weight"])
        bias = torch.from_numpy(np.array(arrays[name + ".bias"], np.float32))
        if bn is None:
            state[conv + ".bias"] = bias
        else:
            state[bn + ".weight"], state[bn + ".bias"] = torch.ones_like(bias), bias
            state[bn + ".running_mean"], state[bn + ".running_var"] = torch.zeros_like(bias), torch.ones_like(bias)
            state[bn + ".num_batches_tracked"] = torch.tensor(0)
    model.load_state_dict(state)  # strict: every key of the torch model, no other
    return model.eval()


def save_predictions(out: Path, images: np.ndarray, labels, predicted, names) -> Path:
    """Each picture as out/<i>_<predicted>.png, and a contact sheet with true and predicted names."""
    from PIL import ImageFont

    out.mkdir(parents=True, exist_ok=True)
    scale, caption = 2, 24
    n, h, w = images.shape[:3]
    sheet = Image.new("RGB", (n * w * scale, h * scale + caption), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, (img, true, pred) in enumerate(zip(images, labels, predicted)):
        Image.fromarray(img).save(out / f"{i:02d}_{names[pred]}.png")
        sheet.paste(Image.fromarray(img).resize((w * scale, h * scale), Image.NEAREST), (i * w * scale, 0))
        colour = (0, 110, 0) if true == pred else (200, 0, 0)
        d.text((i * w * scale + 2, h * scale + 1), names[pred], fill=colour, font=font)
        d.text((i * w * scale + 2, h * scale + 12), f"({names[true]})", fill=(90, 90, 90), font=font)
    sheet_path = out / "predictions.png"
    sheet.save(sheet_path)
    return sheet_path


def shapes_demo(out: Path, torch, n: int, repeat: int, threads: int, model_path=SHAPES_MODEL) -> bool:
    """Part one: the shipped trained model on `n` held-out pictures, engine vs PyTorch. True if all agree."""
    from . import shapes
    from .engine import Engine

    model_path = Path(model_path)
    engine = Engine.load(model_path, threads=threads)
    model = torch_model_from_file(model_path)
    names = engine.labels or [f"class {i}" for i in range(engine.num_classes)]
    src = engine.meta["source"]
    h, w = engine.input_size
    where = "the trained model that ships with the package" if model_path == SHAPES_MODEL else "the model"
    print(f"[1/5] {where}: {model_path.name}, MobileNetV2 {engine.meta['width_mult']} at {h}x{w}, "
          f"{engine.num_classes} classes of drawn shapes")
    if src.get("kind") == "trained":
        print(f"      trained by {src.get('script')} (seed {src.get('seed')}, {src.get('n_train')} pictures of "
              f"data seed {src.get('data_seed')}, {src.get('epochs')} epochs)")
    else:
        print(f"      source: {src}")
    print(f"      classes: {', '.join(names)}")
    images, labels = shapes.make_dataset(n, shapes.HELD_OUT_SEED, size=w)
    x = np.concatenate([engine.preprocess(img) for img in images])
    print(f"      classifying {n} held-out pictures (seed {shapes.HELD_OUT_SEED}, never trained on), "
          f"ISA {engine.plan.isa}, {threads} thread(s)")
    torch.set_num_threads(threads)
    tx = torch.from_numpy(x)
    with torch.inference_mode():
        ours = engine.run(x)
        ref = model(tx).numpy()
        x1, tx1 = x[:1], tx[:1]
        t1 = time_interleaved({"mbv2-engine": lambda: engine.run(x1), "PyTorch eager": lambda: model(tx1)}, repeat)
        tn = time_interleaved({"mbv2-engine": lambda: engine.run(x), "PyTorch eager": lambda: model(tx)},
                              max(1, repeat // 5))
    preds = {"mbv2-engine": ours.argmax(1), "PyTorch eager": ref.argmax(1)}
    acc = {name: float((p == labels).mean()) for name, p in preds.items()}
    same = int((preds["mbv2-engine"] == preds["PyTorch eager"]).sum())
    off = int(violations(ours, ref, "network_f32_vs_torch").sum())

    print(f"      {'':<14}{'accuracy':>10}{'batch 1':>12}{f'batch {n}':>15}")
    for name in preds:
        print(f"      {name:<14}{acc[name]:>10.1%}{t1[name] * 1e3:>9.2f} ms{n / tn[name]:>9.0f} img/s")
    per_class = [int((preds["mbv2-engine"][labels == k] == k).sum()) for k in range(len(names))]
    counts = [int((labels == k).sum()) for k in range(len(names))]
    cells = [f"{c} {r}/{t}" for c, r, t in zip(names, per_class, counts)]
    for i in range(0, len(cells), 5):
        print(f"      {'right per class' if i == 0 else '':<16}" + ", ".join(cells[i:i + 5]))
    print(f"      predictions identical: {same}/{n}; max |logit error| {np.abs(ours - ref).max():.2e} "
          f"(max |logit| {np.abs(ref).max():.2f}), {off} logits outside network_f32_vs_torch")
    picks = [int(np.flatnonzero(labels == k)[0]) for k in range(min(SAVED_PICTURES, len(names)))]
    sheet = save_predictions(out / "shapes", images[picks], labels[picks], preds["mbv2-engine"][picks], names)
    print(f"      saved {len(picks)} held-out pictures named by their predicted class in {sheet.parent}, "
          f"and all of them with true and predicted names in {sheet}")
    ok = same == n and off == 0 and min(acc.values()) >= MIN_ACCURACY
    if not ok:
        print(f"      FAILED: the predictions must be identical, every logit within the tolerance and the "
              f"accuracy at least {MIN_ACCURACY:.0%}")
    return ok



def run_demo(out_dir, seed: int = 0, repeat: int = 10, threads: int = 1, batch: int = 4,
             held_out: int = 300) -> int:
    """Both parts of the demo; 0 when the engine agrees with PyTorch throughout, else 1."""
    torch = _import_torch()
    from .engine import Engine
    from .export import random_model, write_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ok = shapes_demo(out, torch, held_out, repeat, threads)

    print(f"[2/5] exporting a random calibrated MobileNetV2 1.0 (seed {seed}) ...")
    model = random_model(seed=seed, width_mult=1.0, num_classes=1000, size=(224, 224))
    model_path = write_model(model, out / "mbv2_random.npz", source={"kind": "random", "seed": seed})
    image_path = draw_sample_image(out / "sample.png")
    engine = Engine.load(model_path, threads=threads)
    plan = engine.plan
    print(f"      {model_path}; arena {plan.arena_bytes:,} bytes + {plan.ring_bytes:,} of ring buffers, "
          f"ISA {plan.isa}")

    print(f"[3/5] classifying {image_path} (random weights: the classes mean nothing)")
    for p in engine.classify(image_path, top_k=5):
        print(f"      {p.probability:8.4f}  {p.label}")

    print(f"[4/5] checking against the PyTorch model on the sample and a random batch of {batch}")
    rng = np.random.default_rng(seed)
    batch_x = rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)
    image_x = engine.preprocess(image_path)
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

    print(f"[5/5] timing batch 1 at 224x224, {threads} thread(s), median of {repeat} interleaved runs")
    x1 = batch_x[:1]
    tx1 = torch.from_numpy(x1)
    with torch.inference_mode():
        med = time_interleaved({"mbv2-engine": lambda: engine.run(x1),
                                 "PyTorch eager": lambda: model(tx1)}, repeat)
    gflop = 2 * plan.macs / 1e9
    for name, t in med.items():
        print(f"      {name:<14} {t * 1e3:8.2f} ms  {gflop / t:7.1f} GFLOP/s")
    print("demo passed" if ok else "demo FAILED: the engine disagrees with PyTorch (or the shapes model "
          f"scored under {MIN_ACCURACY:.0%})")
    return 0 if ok else 1
