"""Benchmark providers: every engine built from the same weights, fed the same inputs, checked first.

A `Workload` holds one case's files: a random calibrated model (`random_model`)
as the engine's `.npz` and as a torch state dict, the input batch and PyTorch
eager's logits for it. A `Provider` turns a workload into a `Runner` (a
no-argument call returning (N, K) logits): `prepare` writes the provider's own
model file from the shared weights (ONNX, .tflite) and `load` builds the runtime
on it. `ready` is the one gate every benchmark goes through: build, run once,
compare with PyTorch eager (same top-1, logits within the tolerance table), and
only then hand the runner out for timing.

A case's `precision` picks its providers (`Provider.precisions`) and, among them, the peers
the engine is measured against (`Provider.peer_in`: "best peer" is the fastest of those):

- float32: the float engines, every peer a candidate;
- int8 (issue 14): the engine's int8 and the peers' own int8, each quantized from the same
  float weights on the same calibration inputs (`int8_peers.py`), the int8 peers the
  candidates, with the engine's float32 and OpenVINO's default precision as context;
- bf16 (issue 15): the engine's bf16 (`dtype="bf16"`) against OpenVINO's default precision
  on the float model (bf16 where the CPU has AVX512-BF16 or AMX; its ISA column says what
  it resolved to), the one candidate, with the engine's float32 and the float32 peers as
  context.

Every provider is checked against PyTorch eager float32 with its own tolerance entry.

Each runner holds its input already in the layout its engine takes (NCHW for
torch, ONNX Runtime, OpenVINO and mbv2-engine, channels_last for that provider,
NHWC for LiteRT), so timing covers the engine's own work, not a transpose a user of that
engine would not do.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import platform
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
# `assert_close` (over the package's tolerance table) lives in tests/, which is not an installed
# package; appended, so an installed mbv2_engine still wins over the checkout's (which may lack _core).
sys.path.append(str(REPO))
from mbv2_engine.arch import Arch, build_arch, layer_shapes  # noqa: E402
from mbv2_engine.export import random_model, write_model  # noqa: E402
from mbv2_engine.torch_model import MobileNetV2  # noqa: E402
from tests.tolerances import assert_close  # noqa: E402

from int8_peers import (calibration_inputs, engine_int8_file, openvino_precision, qdq_file,  # noqa: E402,I001
                        tflite_int8_file)

SEED = 0
NUM_CLASSES = 1000
TOLERANCE = "peer_engine_vs_torch"


# ---- cases and workloads ----------------------------------------------------

@dataclass(frozen=True)
class Case:
    width: float = 1.0
    size: int = 224
    batch: int = 1
    threads: int = 1
    precision: str = "float32"  # "int8": the int8 providers, each quantizing the same float weights; "bf16"

    @property
    def name(self) -> str:
        prefix = "" if self.precision == "float32" else f"{self.precision}-"
        return f"{prefix}w{self.width}-{self.size}-b{self.batch}-t{self.threads}"


# issue 4, item 6: the whole network at 224 (1 and 2 threads, batch 8), at 160, and at widths 0.5 and 0.35.
# issue 14, item 5: int8 at 224 on 1 and 2 threads, batch 8 on 2 threads, and width 0.35.
# issue 15, item 4: bf16 at 224 on 1 and 2 threads, batch 8 on 2 threads.
CASES = {c.name: c for c in (Case(), Case(threads=2), Case(batch=8, threads=2), Case(size=160),
                             Case(width=0.5), Case(width=0.35),
                             Case(precision="int8"), Case(threads=2, precision="int8"),
                             Case(batch=8, threads=2, precision="int8"), Case(width=0.35, precision="int8"),
                             Case(precision="bf16"), Case(threads=2, precision="bf16"),
                             Case(batch=8, threads=2, precision="bf16"))}


@dataclass(frozen=True)
class Workload:
    """One case's files under `dir`: weights (.npz and torch state), inputs, PyTorch eager's logits."""

    case: Case
    dir: Path

    @property
    def npz(self) -> Path:
        return self.dir / "weights.npz"

    @property
    def torch_state(self) -> Path:
        return self.dir / "torch_state.pt"

    @cached_property
    def x(self) -> np.ndarray:
        return np.load(self.dir / "inputs.npy")

    @cached_property
    def expected(self) -> np.ndarray:
        return np.load(self.dir / "expected.npy")

    @cached_property
    def calibration(self) -> np.ndarray:
        """int8 cases: the calibration inputs every quantizer gets (int8_peers.calibration_inputs)."""
        return np.load(self.dir / "calibration.npy")

    @property
    def arch(self) -> Arch:
        return build_arch(self.case.width, NUM_CLASSES)

    @property
    def macs_per_image(self) -> int:
        return sum(layer.macs for layer in layer_shapes(self.arch, self.case.size, self.case.size))

    def gflops(self, seconds: float) -> float:
        return 2 * self.macs_per_image * self.case.batch / seconds / 1e9

    def torch_model(self) -> MobileNetV2:
        model = MobileNetV2(self.case.width, NUM_CLASSES)
        model.load_state_dict(torch.load(self.torch_state, weights_only=True))
        return model.eval()

    @classmethod
    def open(cls, dir: Path) -> "Workload":
        """A workload written earlier by `make_workload` (used by the memory probe's subprocess)."""
        return cls(Case(**json.loads((Path(dir) / "case.json").read_text())), Path(dir))


def make_workload(case: Case, root: Path) -> Workload:
    """Write (or reuse) the files of `case` under `root/<case name>`: identical for every provider."""
    w = Workload(case, Path(root) / case.name)
    if (w.dir / "case.json").exists():
        return w
    w.dir.mkdir(parents=True, exist_ok=True)
    size = (case.size, case.size)
    model = random_model(SEED, case.width, NUM_CLASSES, size, progress=False)
    write_model(model, w.npz, {"kind": "random", "seed": SEED}, size=size)
    torch.save(model.state_dict(), w.torch_state)
    x = np.random.default_rng(SEED).standard_normal((case.batch, 3, *size), dtype=np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    np.save(w.dir / "inputs.npy", x)
    np.save(w.dir / "expected.npy", expected)
    if case.precision == "int8":
        np.save(w.dir / "calibration.npy", calibration_inputs(case.size))
    (w.dir / "case.json").write_text(json.dumps(asdict(case)))  # last: marks the files complete
    return w


# ---- providers ----------------------------------------------------------------

class Unavailable(Exception):
    """A provider that cannot be built here (package missing, ISA absent): skipped, not failed."""


class Runner(NamedTuple):
    run: Callable[[], np.ndarray]
    isa: str  # the kernels' instruction set where the engine tells it, else what the provider is (and resolved to)
    accuracy: dict | None = None  # set by `checked`: `agreement` with PyTorch eager float32


@dataclass(frozen=True)
class Provider:
    name: str
    needs: tuple[str, ...]  # importable modules it needs; any missing skips it
    prepare: Callable[[Workload], Path]  # writes its model file (idempotent) and returns its path
    load: Callable[[Workload, Path], Runner]
    precisions: tuple[str, ...] = ("float32",)  # the cases it runs in (Case.precision)
    # the cases in which it competes for "best peer" (the others see it as context); () for mbv2-engine itself
    peer_in: tuple[str, ...] = ("float32",)
    tolerance: str = TOLERANCE  # its entry of the tolerance table against PyTorch eager float32

    def missing(self) -> list[str]:
        return [m for m in self.needs if not _importable(m)]

    def runs_in(self, case: Case) -> bool:
        return case.precision in self.precisions

    def is_peer(self, case: Case) -> bool:
        return case.precision in self.peer_in


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package that fails to import: as good as missing
        return False


def _engine(isa: str, precision: str = "float32") -> Callable[[Workload, Path], Runner]:
    """The engine on `path` in `precision`: float32 or int8 (which the file decides) load with dtype="fp32",
    bf16 with dtype="bf16"; the plan must say it runs that precision."""
    dtype = "bf16" if precision == "bf16" else "fp32"

    def load(w: Workload, path: Path) -> Runner:
        from mbv2_engine import DeviceError, Engine
        try:
            engine = Engine.load(path, threads=w.case.threads, isa=isa, dtype=dtype)
        except DeviceError as e:  # an ISA this CPU lacks (bf16: AVX512-BF16)
            raise Unavailable(str(e)) from None
        plan = engine.plan_for(w.case.size, w.case.size)
        assert plan.precision == precision, f"{path.name} runs {plan.precision}, expected {precision}"
        x = w.x
        return Runner(lambda: engine.run(x), plan.isa)
    return load


def torch_runner(model: Callable, x: torch.Tensor) -> Runner:
    """A torch callable on a fixed input, under inference_mode; the ISA is the one ATen dispatches to."""
    @torch.inference_mode()
    def run() -> np.ndarray:
        return model(x).numpy()
    return Runner(run, torch.backends.cpu.get_cpu_capability())


def _torch_eager(channels_last: bool) -> Callable[[Workload, Path], Runner]:
    def load(w: Workload, path: Path) -> Runner:
        torch.set_num_threads(w.case.threads)
        model, x = w.torch_model(), torch.from_numpy(w.x)
        if channels_last:
            model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        return torch_runner(model, x)
    return load


def _load_compiled(w: Workload, path: Path) -> Runner:
    torch.set_num_threads(w.case.threads)
    # Inductor's own modules raise DeprecationWarnings (torch.jit) on import and
    # compile: theirs, not ours, and pytest here turns warnings into errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import torch._inductor.config as inductor_config
        # Freezing folds the weights into the graph as constants, so inductor can
        # pre-pack them and fold BN: the fastest torch.compile mode for inference.
        inductor_config.freezing = True
        # Each case compiles a new model of the same class: past the recompile limit
        # dynamo would quietly fall back to eager, so start from empty caches.
        torch._dynamo.reset()
        runner = torch_runner(torch.compile(w.torch_model()), torch.from_numpy(w.x))
        runner.run()  # compile now, as part of loading
    return runner


def _onnx_file(w: Workload) -> Path:
    path = w.dir / "model.onnx"
    if not path.exists():
        # The exporter logs that torchvision's ops are absent and warns about
        # pytree internals; neither concerns this model.
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(w.torch_model(), (torch.from_numpy(w.x),), str(path), dynamo=True,
                              input_names=["x"], output_names=["logits"], verbose=False)
    return path


def _load_ort(w: Workload, path: Path) -> Runner:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = w.case.threads, 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {"x": w.x}
    return Runner(lambda: session.run(["logits"], feed)[0], "mlas")


def _load_openvino(w: Workload, path: Path) -> Runner:
    import openvino as ov
    # f32 stated explicitly: on CPUs with bf16 or AMX, OpenVINO would otherwise pick bf16.
    config = {"INFERENCE_NUM_THREADS": w.case.threads, "INFERENCE_PRECISION_HINT": "f32",
              "PERFORMANCE_HINT": "LATENCY"}
    request = ov.Core().compile_model(str(path), "CPU", config).create_infer_request()
    x = w.x
    return Runner(lambda: request.infer({0: x})[0], "onednn")


def openvino_resolved(compiled) -> str:
    """What a compiled OpenVINO model runs in: its inference precision ("bf16", "f32"), with "-amx" when
    oneDNN picked AMX kernels for any of its layers (their `primitiveType`, e.g.
    "brgconv_avx512_amx_1x1_bf16"; on AVX512-BF16 without AMX it reads "brgconv_avx512_1x1_bf16")."""
    precision = openvino_precision(compiled)
    # .astype(str): str() of the OVAny a runtime-info entry is reads "<OVAny class>".
    kernels = {op.get_rt_info()["primitiveType"].astype(str) for op in compiled.get_runtime_model().get_ordered_ops()
               if "primitiveType" in op.get_rt_info()}
    return f"{precision}-amx" if any("amx" in k for k in kernels) else precision


def _openvino_as_is(int8: bool) -> Callable[[Workload, Path], Runner]:
    """OpenVINO with no precision hint: the QDQ model (int8 where its QDQ pairs are) or the float model.

    On a CPU with AVX512-BF16 or AMX OpenVINO then runs bf16 wherever it does not run int8; the ISA
    column shows what the compiled model resolved to (`openvino_resolved`: its INFERENCE_PRECISION_HINT
    property, and whether oneDNN runs it on AMX tiles).
    """
    def load(w: Workload, path: Path) -> Runner:
        import openvino as ov
        config = {"INFERENCE_NUM_THREADS": w.case.threads, "PERFORMANCE_HINT": "LATENCY"}
        try:
            compiled, note = ov.Core().compile_model(str(path), "CPU", config), ""
        except RuntimeError:
            if not int8:
                raise
            # Seen with OpenVINO 2026.4 on an AMX CPU (Emerald Rapids class): the QDQ model fails to
            # compile at its default bf16 ("No suitable implementations"), and compiles with the float32
            # hint, which still runs the QDQ pairs in int8; the ISA column says so.
            config["INFERENCE_PRECISION_HINT"] = "f32"
            compiled, note = ov.Core().compile_model(str(path), "CPU", config), " (default failed)"
        resolved = openvino_resolved(compiled)
        request, x = compiled.create_infer_request(), w.x
        return Runner(lambda: request.infer({0: x})[0],
                      f"i8+{resolved}{note}" if int8 else f"onednn-{resolved}")
    return load


def _tflite_file(w: Workload) -> Path:
    from tflite_writer import tflite_model
    path = w.dir / "model.tflite"
    if not path.exists():
        c = w.case
        arrays = np.load(w.npz, allow_pickle=False)
        path.write_bytes(tflite_model(arrays, w.arch, c.batch, c.size, c.size))
    return path


def _load_litert(w: Workload, path: Path) -> Runner:
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path), num_threads=w.case.threads)
    interp.allocate_tensors()
    delegates = [op for op in interp._get_ops_details() if op["op_name"] == "DELEGATE"]
    if not delegates:
        raise Unavailable("LiteRT did not apply its default XNNPACK delegate")
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    if w.case.precision == "int8" and not (len(delegates) == 1 and list(delegates[0]["outputs"]) == [out]
                                           and inp in delegates[0]["inputs"]):
        # The node list keeps the delegated nodes beside the DELEGATE node: whole-graph delegation shows
        # as one DELEGATE from the input to the output. An int8 op that XNNPACK left to LiteRT's builtin
        # kernels would split it, and time those kernels, not XNNPACK's.
        raise Unavailable(f"XNNPACK took only part of the int8 graph ({len(delegates)} delegate partitions)")
    x = np.ascontiguousarray(w.x.transpose(0, 2, 3, 1))

    def run() -> np.ndarray:
        interp.set_tensor(inp, x)
        interp.invoke()
        return interp.get_tensor(out)
    return Runner(run, "xnnpack")


FLOAT32, INT8, BF16 = ("float32",), ("int8",), ("bf16",)
INT8_TOLERANCE = "int8_vs_f32"
BF16_TOLERANCE = "bf16_vs_f32"
FLOAT_PEER = FLOAT32 + BF16  # a float32 peer: a candidate in the float32 cases, context in the bf16 ones

PROVIDERS = {p.name: p for p in (
    Provider("mbv2-engine", ("mbv2_engine._core",), attrgetter("npz"), _engine("auto"),
             precisions=FLOAT32 + INT8 + BF16, peer_in=()),
    Provider("mbv2-engine-ref", ("mbv2_engine._core",), attrgetter("npz"), _engine("ref"), peer_in=()),
    # The float32 kernels of one x86 ISA, forced (issue 16: the AVX2 path against the AVX-512 one on the
    # same core, interleaved); skipped where the CPU lacks it.
    Provider("mbv2-engine-avx2", ("mbv2_engine._core",), attrgetter("npz"), _engine("avx2"), peer_in=()),
    Provider("mbv2-engine-avx512", ("mbv2_engine._core",), attrgetter("npz"), _engine("avx512"), peer_in=()),
    Provider("torch-eager", (), attrgetter("torch_state"), _torch_eager(channels_last=False), precisions=FLOAT_PEER),
    Provider("torch-channels-last", (), attrgetter("torch_state"), _torch_eager(channels_last=True),
             precisions=FLOAT_PEER),
    Provider("torch-compile", (), attrgetter("torch_state"), _load_compiled, precisions=FLOAT_PEER),
    Provider("onnxruntime", ("onnxruntime", "onnx", "onnxscript"), _onnx_file, _load_ort, precisions=FLOAT_PEER),
    Provider("openvino", ("openvino", "onnx", "onnxscript"), _onnx_file, _load_openvino, precisions=FLOAT_PEER),
    Provider("litert-xnnpack", ("ai_edge_litert", "flatbuffers"), _tflite_file, _load_litert,
             precisions=FLOAT_PEER),
    # int8 cases (issue 14): the engine and the peers' own int8, each quantized from the same float
    # weights on the same calibration inputs (int8_peers.py); OpenVINO's default precision on the
    # float model as context, not an int8 peer ("best peer" is the best int8 peer).
    Provider("mbv2-engine-int8", ("mbv2_engine._core",), engine_int8_file, _engine("auto", "int8"),
             precisions=INT8, peer_in=(), tolerance=INT8_TOLERANCE),
    Provider("onnxruntime-int8", ("onnxruntime", "onnx", "onnxscript"), lambda w: qdq_file(w, _onnx_file),
             _load_ort, precisions=INT8, peer_in=INT8, tolerance=INT8_TOLERANCE),
    Provider("openvino-int8", ("openvino", "onnxruntime", "onnx", "onnxscript"), lambda w: qdq_file(w, _onnx_file),
             _openvino_as_is(int8=True), precisions=INT8, peer_in=INT8, tolerance=INT8_TOLERANCE),
    Provider("litert-xnnpack-int8", ("ai_edge_litert", "flatbuffers"), tflite_int8_file, _load_litert,
             precisions=INT8, peer_in=INT8, tolerance=INT8_TOLERANCE),
    # bf16 cases (issue 15): the engine's bf16 on the float model, against OpenVINO's default precision
    # on the same float model (the best peer there: what a user who keeps OpenVINO's defaults gets),
    # with the engine's float32 and the float32 peers as context.
    Provider("mbv2-engine-bf16", ("mbv2_engine._core",), attrgetter("npz"), _engine("auto", "bf16"),
             precisions=BF16, peer_in=(), tolerance=BF16_TOLERANCE),
    Provider("openvino-default", ("openvino", "onnx", "onnxscript"), _onnx_file, _openvino_as_is(int8=False),
             precisions=INT8 + BF16, peer_in=BF16, tolerance="openvino_default_vs_f32"),
)}


def check(name: str, actual: np.ndarray, expected: np.ndarray, top1: bool = True,
          tolerance: str = TOLERANCE) -> None:
    """A provider's output against PyTorch eager's: values within tolerance and, for logits, the same top-1.

    The int8 and bf16 providers (and OpenVINO's default precision) are checked with top1=False: see the
    reasons of their entries ("int8_vs_f32", "bf16_vs_f32", "openvino_default_vs_f32").
    """
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{name}: output shape {actual.shape} != {expected.shape}"
    if top1:
        got, want = actual.argmax(axis=1), expected.argmax(axis=1)
        assert (got == want).all(), f"{name}: top-1 {got.tolist()} != PyTorch eager's {want.tolist()}"
    try:
        assert_close(actual, expected, tolerance)
    except AssertionError as e:
        raise AssertionError(f"{name} vs PyTorch eager: {e}") from None


def ready(provider: Provider, w: Workload) -> Runner:
    """Build the provider on the workload and check its output; raises `Unavailable` to skip."""
    if not provider.runs_in(w.case):
        raise Unavailable(f"runs in {'/'.join(provider.precisions)} cases, not {w.case.precision}")
    missing = provider.missing()
    if missing:
        raise Unavailable(f"not installed: {', '.join(missing)} (pip install 'mbv2-engine[bench]')")
    exact = provider.tolerance == TOLERANCE  # a float32 peer: same top-1 too
    return checked(provider.name, provider.load(w, provider.prepare(w)), w.expected, top1=exact,
                   tolerance=provider.tolerance)


def checked(name: str, runner: Runner, expected: np.ndarray, top1: bool = True,
            tolerance: str = TOLERANCE) -> Runner:
    """The runner, once its output matched PyTorch eager's: nothing is timed before this. It comes
    back with `accuracy` set: how its output agreed with PyTorch eager's (max |error|, top-1)."""
    out = runner.run()
    check(name, out, expected, top1, tolerance)
    return runner._replace(accuracy=agreement(out, expected))


def agreement(actual: np.ndarray, expected: np.ndarray) -> dict:
    """How an output tracks PyTorch eager float32's: max and mean |error|, the largest |expected|, and
    for (N, K) logits the share of images with the same top-1."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    err = np.abs(a - e)
    out = {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
           "max_abs_expected": float(np.abs(e).max())}
    if e.ndim == 2:
        out.update(top1_agreement=float((a.argmax(1) == e.argmax(1)).mean()), images=int(e.shape[0]))
    return out


def cpu_model() -> str:
    """The CPU's model name, with its widest x86 SIMD extension: Zen 3 and Zen 4 differ by AVX-512."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    simd = next((f for f in ("avx512f", "avx2") if f in flags), None)
    return f"{name} ({simd})" if simd else name
