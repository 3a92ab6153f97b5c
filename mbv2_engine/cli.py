"""The `mbv2-engine` command: export, quantize, classify, info, bench, demo."""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .errors import InputError, Mbv2Error


def positive_int(text: str) -> int:
    """An argument that must be an integer >= 1 (threads, batch, repeat, classes, top-k)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def width_mult(text: str) -> float:
    """A width multiplier: a finite number > 0 (the network table bounds it above)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def parse_size(text: str) -> tuple[int, int]:
    """'224' or '160x128' (height x width)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"size must be H or HxW, got {text!r}")
    return parts[0], parts[1]


def add_dtype(p) -> None:
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: the 1x1 convolutions and the classifier in bf16 on AVX512-BF16 CPUs, faster "
                        "and a little less exact (README, bf16); an int8 file runs in int8 (default: %(default)s)")


def cmd_export(args) -> int:
    from . import export
    from .labels import read_labels

    labels = read_labels(args.labels) if args.labels else None
    if args.preprocess and not (args.from_onnx or args.from_tflite):
        raise InputError("--preprocess applies to --from-onnx and --from-tflite (the other sources record theirs)")
    if args.from_keras:
        from .importers.keras import export_from_keras
        path = export_from_keras(args.from_keras, args.output, labels=labels)
    elif args.from_onnx:
        from .importers.onnx import export_from_onnx
        path = export_from_onnx(args.from_onnx, args.output, labels=labels, preprocess=args.preprocess)
    elif args.from_tflite:
        from .importers.tflite import export_from_tflite
        path = export_from_tflite(args.from_tflite, args.output, labels=labels, preprocess=args.preprocess)
    elif args.from_torch:
        path = export.export_from_torch(args.from_torch, args.output, width_mult=args.width,
                                        num_classes=args.num_classes, labels=labels)
    else:
        path = export.export_random(args.output, seed=args.seed, width_mult=1.0 if args.width is None else args.width,
                                    size=args.size, num_classes=1000 if args.num_classes is None else args.num_classes,
                                    progress=not args.quiet, labels=labels)
    print(f"wrote {path}")
    return 0


def cmd_quantize(args) -> int:
    from . import format as wformat
    from . import quantize

    wformat.check_destination(args.output)  # before the calibration, which takes seconds to minutes
    calibration = (quantize.load_calibration_npy(args.calibration_npy) if args.calibration_npy
                   else args.calibration)
    quantized = quantize.quantize_model(args.model, calibration, samples=args.samples, method=args.method,
                                        progress=not args.quiet)
    path = quantize.save_quantized(args.output, quantized.arrays, quantized.meta)
    q = quantized.meta["quantization"]
    print(f"quantized {args.model}: int8 weights (per channel) for the blocks and the head, "
          f"{len(q['tensors'])} uint8 activation tensors calibrated by {q['calibration']['method']} "
          f"on {q['calibration']['samples']} samples")
    print(f"wrote {path}")
    return 0


def cmd_classify(args) -> int:
    """Exit 0 when every image was classified, 1 when some failed, 2 for a usage error, 130 on Ctrl-C."""
    from . import collection
    from .engine import Engine

    fmt = collection.format_for(args.output, args.format)
    engine = Engine.load(args.model, threads=args.threads, isa=args.isa, dtype=args.dtype)
    top_k = min(args.top_k, engine.num_classes)
    paths = collection.discover(args.images, globs=args.glob)
    if not paths:
        raise InputError(f"no images found in {', '.join(args.images)}"
                         + (f" matching {', '.join(args.glob)}" if args.glob else ""))
    writer, done = collection.open_writer(fmt, args.output, top_k, resume=args.resume)
    todo = [p for p in paths if p not in done]
    try:
        summary = collection.classify_paths(engine, todo, writer, top_k=top_k, batch=args.batch,
                                            workers=args.workers, draft=not args.no_draft,
                                            progress=False if args.quiet else None, skipped=len(paths) - len(todo))
    except BrokenPipeError:  # stdout closed early (`| head`): stop quietly, as other filters do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    print(f"mbv2-engine classify: {summary.line()}", file=sys.stderr, flush=True)
    if summary.interrupted:
        return 130
    return 1 if summary.failures else 0


def cmd_info(args) -> int:
    from .engine import Engine

    engine = Engine.load(args.model, threads=1, isa=args.isa, dtype=args.dtype)
    size = args.size or engine.input_size
    meta = engine.meta
    hidden = "".join(f"Dense {h['units']} ({h['activation']}) -> " for h in meta["hidden"])
    print(f"{args.model}: MobileNetV2 width {meta['width_mult']}, {engine.num_classes} classes, "
          f"padding {meta['padding']}, head: pool -> {hidden}classifier -> {meta['activation']}, "
          f"source {meta['source']}")
    print(engine.plan_for(*size))
    return 0


def cmd_bench(args) -> int:
    import numpy as np

    from .demo import time_interleaved
    from .engine import Engine
    from .fma_peak import instruction, peak_gflops, share

    engine = Engine.load(args.model, threads=args.threads, isa=args.isa, dtype=args.dtype)
    h, w = args.size or engine.input_size
    plan = engine.plan_for(h, w)
    x = np.random.default_rng(0).standard_normal((args.batch, 3, h, w), dtype=np.float32)
    t = time_interleaved({"engine": lambda: engine.run(x)}, args.repeat)["engine"]
    gflop = 2 * args.batch * plan.macs / 1e9
    # The share is of one thread's FMA peak times the thread count (measured once per process).
    peak = peak_gflops(plan.isa, plan.precision)
    unit = "GOP/s" if plan.precision == "int8" else "GFLOP/s"
    what = f"{unit} {plan.isa} " + ("FMA" if plan.precision == "float32" else
                                    f"{plan.precision} ({instruction(plan.isa, plan.precision)})")
    of_peak = f" ({100 * gflop / t / (peak * plan.threads):.0f}% of {plan.threads} x {peak:.1f} {what} peak)" \
        if peak else ""
    print(f"{args.model}: {h}x{w}, batch {args.batch}, {plan.threads} thread(s), {plan.precision} on ISA {plan.isa}: "
          f"median {t * 1e3:.2f} ms of {args.repeat}, {args.batch / t:.1f} images/s, {gflop / t:.1f} GFLOP/s"
          f"{of_peak}")
    if args.profile:
        print(f"{'block':<24}{'ms':>8}{'MMACs':>9}{'GFLOP/s':>9}{'peak':>6}   "
              f"(one image, one thread, best of {args.repeat})")
        for row in engine.profile(h, w, repeats=args.repeat):
            print(f"{row['name']:<24}{row['ms']:>8.3f}{row['macs'] / 1e6:>9.2f}{row['gflops']:>9.1f}"
                  f"{share(row['gflops'], plan.isa, plan.precision):>6}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.out_dir, seed=args.seed, repeat=args.repeat, threads=args.threads, held_out=args.held_out)


def collection_default_batch() -> int:
    from .collection import DEFAULT_BATCH
    return DEFAULT_BATCH


def quantize_default(name: str):
    from . import quantize
    return getattr(quantize, name)


def cmake_dir() -> Path:
    """Where an installed wheel keeps mbv2_engineConfig.cmake (the C/C++ package: libmbv2 and headers)."""
    return Path(__file__).resolve().parent / "lib" / "cmake" / "mbv2_engine"


class PrintCMakeDir(argparse.Action):
    """`--cmake-dir`: print the config folder and exit, before any subcommand is required."""

    def __call__(self, parser, namespace, values, option_string=None):
        if not (cmake_dir() / "mbv2_engineConfig.cmake").is_file():
            parser.exit(2, f"mbv2-engine: no CMake package in {cmake_dir()}; it comes with the installed "
                           f"wheel (pip install mbv2-engine), not with a source tree\n")
        print(cmake_dir())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mbv2-engine", description="Fused-kernel MobileNetV2 inference.")
    parser.add_argument("--cmake-dir", action=PrintCMakeDir, nargs=0,
                        help="print the folder to pass to CMake as mbv2_engine_DIR or CMAKE_PREFIX_PATH, and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="write a weight file (.npz) from PyTorch, timm, Keras, ONNX or TFLite "
                                      "weights, or random ones")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-torch", metavar="STATE.pth", help="torchvision mobilenet_v2 or timm mobilenetv2_* state dict")
    src.add_argument("--from-keras", metavar="MODEL.h5|MODEL.keras",
                     help="a Keras MobileNetV2 (keras.applications, or a transfer-learning model around one), "
                          "read with h5py: no TensorFlow or keras needed")
    src.add_argument("--from-onnx", metavar="MODEL.onnx", help="a float32 MobileNetV2 ONNX graph (torch.onnx or "
                                                                "tf2onnx style), read with the onnx package")
    src.add_argument("--from-tflite", metavar="MODEL.tflite",
                     help="a float32 MobileNetV2 .tflite, read with the tflite schema package: no TensorFlow")
    src.add_argument("--random", action="store_true", help="random weights, BN calibrated on random inputs")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    p.add_argument("--width", type=width_mult,
                   help="width multiplier (default: detected from a state dict's shapes; 1.0 for --random)")
    p.add_argument("--num-classes", type=positive_int, help="class count (default: from the state dict, or 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (--random)")
    p.add_argument("--size", type=parse_size, default=(224, 224), help="input size H or HxW (--random)")
    p.add_argument("--labels", metavar="FILE|imagenet",
                   help="class names, one a line (or 'imagenet': the 1000 ImageNet-1k names that ship with "
                        "the package); their count must equal the class count")
    p.add_argument("--preprocess", choices=("keras", "torchvision"),
                   help="the input scaling to record, for --from-onnx and --from-tflite, whose files do not say it "
                        "(default: keras, inputs in [-1, 1], for NHWC graphs and .tflite; torchvision's ImageNet "
                        "mean and std for NCHW ONNX graphs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("quantize", help="write an int8 weight file (format version 3) from a float one, "
                                        "calibrated on sample inputs (docs/quantization.md)")
    p.add_argument("model", metavar="M.npz", help="a float weight file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    cal = p.add_mutually_exclusive_group(required=True)
    cal.add_argument("--calibration", nargs="+", metavar="PATH",
                     help="calibration images: files, or folders searched recursively; preprocessed as the "
                          "model's metadata says")
    cal.add_argument("--calibration-npy", metavar="X.npy",
                     help="calibration inputs, already normalised: float32 (N, 3, H, W) or (N, H, W, 3)")
    p.add_argument("--samples", type=positive_int, metavar="N",
                   help=f"use at most N calibration inputs, in order (default: {quantize_default('DEFAULT_SAMPLES')})")
    p.add_argument("--method", default=quantize_default("DEFAULT_METHOD"),
                   help="calibration: minmax, percentile-P (e.g. percentile-99.99) or mse (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("classify", help="print or write the top-k classes of images: files, folders, or a list "
                                        "of paths on standard input")
    p.add_argument("images", nargs="+", metavar="PATH",
                   help="an image file, a folder (searched recursively), or - for paths on standard input, one a line")
    p.add_argument("--model", required=True, metavar="M.npz")
    p.add_argument("--top-k", type=positive_int, default=5)
    p.add_argument("--threads", type=positive_int, help="engine threads (default: the physical cores)")
    p.add_argument("--isa", default="auto", help="kernel ISA: auto, ref, ...")
    add_dtype(p)
    p.add_argument("--glob", action="append", metavar="PATTERN",
                   help="in folders, take the files whose name or path relative to the folder matches PATTERN "
                        "(repeatable; default: every extension Pillow reads)")
    p.add_argument("--batch", type=positive_int, default=collection_default_batch(), metavar="N",
                   help="images per engine call (default: %(default)s)")
    p.add_argument("--workers", type=positive_int, metavar="N", help="decoding threads (default: the CPUs, at most 8)")
    p.add_argument("-o", "--output", metavar="FILE.jsonl|FILE.csv",
                   help="write JSON Lines or CSV here, flushed as results arrive (default: a table on stdout)")
    p.add_argument("--format", choices=("table", "jsonl", "csv"),
                   help="output format (default: from the --output extension, else table)")
    p.add_argument("--resume", action="store_true",
                   help="skip the paths already in --output and append to it")
    p.add_argument("--no-draft", action="store_true",
                   help="decode JPEGs at full size (default: let the decoder downscale large ones, much faster)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("info", help="print the plan: layers, shapes, MACs, parameters, arena bytes")
    p.add_argument("model", metavar="M.npz")
    p.add_argument("--size", type=parse_size, help="input size H or HxW (default: the model's)")
    p.add_argument("--isa", default="auto")
    add_dtype(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("bench", help="time the engine on random inputs, optionally per block")
    p.add_argument("model", metavar="M.npz")
    p.add_argument("--size", type=parse_size, help="input size H or HxW (default: the model's)")
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--threads", type=positive_int)
    p.add_argument("--isa", default="auto")
    add_dtype(p)
    p.add_argument("--repeat", type=positive_int, default=20)
    p.add_argument("--profile", action="store_true", help="also time each block alone")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="classify held-out pictures with the trained model that ships with the "
                                    "package, then export a random full-size model, classify a sample image, "
                                    "check both against PyTorch and time them")
    p.add_argument("--out-dir", default="mbv2-demo", help="where the model and sample image go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=positive_int, default=10, help="timed runs per engine")
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--held-out", type=positive_int, default=300, help="held-out pictures for the trained model")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Mbv2Error as e:
        print(f"mbv2-engine {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
