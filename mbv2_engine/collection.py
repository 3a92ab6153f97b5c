"""Classifying many image files: path discovery, a decode pool, batching, writers, resume, a summary.

`classify_paths(engine, paths, writer)` is what `mbv2-engine classify` runs:
worker threads decode and preprocess images (Pillow releases the GIL while it
decodes and resamples) while the main thread runs the engine on full batches
(the engine releases the GIL too), so decoding overlaps with inference. Each
batch's results are written and flushed as soon as it is classified; a file
that fails to decode is reported, written with an `error` field and counted,
and the run goes on. The first SIGINT (Ctrl-C) stops the run after the batch
in the engine: the batch still being gathered is dropped, not written; a
second one interrupts at once.
"""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError
from .preprocess import load_image

FORMATS = ("table", "jsonl", "csv")
EXTENSION_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
DEFAULT_BATCH = 8  # bench_classify.py --sweep-batch: 1..32 within noise here (the engine is fused per image)


def image_extensions() -> frozenset[str]:
    """The file extensions (lower case, with the dot) Pillow has a decoder for."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


# ---- finding the files ---------------------------------------------------------------------------

def discover(inputs, globs=None, stdin=None) -> list[str]:
    """The image paths named by `inputs`: files as given (whatever their extension), directories
    walked recursively in sorted order (files whose path relative to the directory matches one of
    `globs`, default: any extension Pillow reads), and "-" for paths read from `stdin`, one a line
    (each of which may be a file or a directory too). A path that does not exist is kept: it fails
    when it is decoded, like any other unreadable file."""
    exts = image_extensions()
    found: list[str] = []
    stdin_read = False
    for item in inputs:
        if item == "-":
            if stdin_read:
                continue
            stdin_read = True
            stream = sys.stdin if stdin is None else stdin
            names = [line.rstrip("\r\n") for line in stream]
            found.extend(_expand(name, globs, exts) if os.path.isdir(name) else [name]
                         for name in names if name.strip())
            continue
        found.append(_expand(item, globs, exts) if os.path.isdir(item) else [item])
    return [p for group in found for p in group]


def _expand(directory: str, globs, exts) -> list[str]:
    out = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = Path(os.path.relpath(path, directory)).as_posix()
            if globs:
                if any(fnmatchcase(rel, g) or fnmatchcase(name, g) for g in globs):
                    out.append(path)
            elif os.path.splitext(name)[1].lower() in exts:
                out.append(path)
    return out


# ---- writers -------------------------------------------------------------------------------------

def format_for(output: str | None, fmt: str | None) -> str:
    """The output format: `fmt` if given, else from the output file's extension, else the table."""
    if fmt:
        if fmt not in FORMATS:
            raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if fmt == "table" and output:
            raise InputError("--format table writes to the terminal; an --output file takes jsonl or csv")
        return fmt
    if not output:
        return "table"
    ext = os.path.splitext(output)[1].lower()
    if ext not in EXTENSION_FORMATS:
        raise InputError(f"cannot tell the output format from {output!r}: name it .jsonl or .csv, "
                         f"or pass --format jsonl|csv")
    return EXTENSION_FORMATS[ext]


class TableWriter:
    """The path, then one line per prediction: probability and label. Failures go to stderr only."""

    def __init__(self, stream, top_k: int, echo=None):
        self.stream, self.top_k, self.echo = stream, top_k, echo

    def results(self, rows) -> None:
        lines = []
        for path, preds in rows:
            lines.append(path)
            lines.extend(f"  {p.probability:8.4f}  {p.label}" for p in preds)
        text = "\n".join(lines)
        if self.echo:
            self.echo(text)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def error(self, path: str, reason: str) -> None:
        pass

    def close(self) -> None:
        self.stream.flush()


class JsonlWriter:
    """One JSON object a line: {"path", "predictions": [{"index", "label", "probability"}...]}, or
    {"path", "error"} for a file that could not be classified."""

    def __init__(self, stream, top_k: int):
        self.stream = stream

    def results(self, rows) -> None:
        self._write("".join(json.dumps({"path": path, "predictions": [
            {"index": p.index, "label": p.label, "probability": p.probability} for p in preds]}) + "\n"
            for path, preds in rows))

    def error(self, path: str, reason: str) -> None:
        self._write(json.dumps({"path": path, "error": reason}) + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()


def csv_header(top_k: int) -> list[str]:
    return ["path", "error"] + [f"{col}_{r}" for r in range(1, top_k + 1) for col in ("label", "index",
                                                                                       "probability")]


class CsvWriter:
    """Columns path, error, then label_r, index_r, probability_r for r = 1..top_k; a failed file has
    its reason in `error` and the other columns empty."""

    def __init__(self, stream, top_k: int, header: bool = True):
        self.stream, self.top_k = stream, top_k
        if header:
            self._write([csv_header(top_k)])

    def results(self, rows) -> None:
        out = []
        for path, preds in rows:
            cells = [path, ""]
            for p in preds:
                cells += [p.label, p.index, repr(p.probability)]
            out.append(cells + [""] * (len(csv_header(self.top_k)) - len(cells)))
        self._write(out)

    def error(self, path: str, reason: str) -> None:
        self._write([[path, reason] + [""] * (3 * self.top_k)])

    def _write(self, rows) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        self.stream.write(buf.getvalue())
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()


def open_writer(fmt: str, output: str | None, top_k: int, resume: bool = False, echo=None):
    """(writer, paths already in the output): a fresh file, or with `resume` the existing one
    appended to, after dropping a last line an interrupted run left unfinished."""
    if fmt == "table":
        if resume:
            raise InputError("--resume needs an --output file (jsonl or csv) to read the finished paths from")
        return TableWriter(sys.stdout, top_k, echo=echo), set()
    if output is None:  # jsonl or csv on standard output
        if resume:
            raise InputError("--resume needs an --output file (jsonl or csv) to read the finished paths from")
        stream = _Unclosed(sys.stdout)
        return (JsonlWriter(stream, top_k) if fmt == "jsonl" else CsvWriter(stream, top_k)), set()
    done: set[str] = set()
    exists = resume and os.path.isfile(output) and os.path.getsize(output) > 0
    if exists:
        done = _read_done(output, fmt, top_k)
    try:
        stream = open(output, "a" if exists else "w", encoding="utf-8", newline="")
    except OSError as e:
        raise InputError(f"cannot write {output}: {e}") from e
    writer = JsonlWriter(stream, top_k) if fmt == "jsonl" else CsvWriter(stream, top_k, header=not exists)
    return writer, done


def _read_done(output: str, fmt: str, top_k: int) -> set[str]:
    with open(output, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    if end < len(data):  # an unfinished last line (a run killed mid-write): not a finished result
        with open(output, "r+b") as f:
            f.truncate(end)
        data = data[:end]
    text = data.decode("utf-8")
    done = set()
    if fmt == "jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                done.add(json.loads(line)["path"])
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"--resume: {output} line {n} is not a result line ({e}); is it a JSON Lines "
                                 f"file this command wrote?") from None
        return done
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return done
    if rows[0] != csv_header(top_k):
        raise InputError(f"--resume: {output} has the columns {','.join(rows[0][:8])}...; this run would write "
                         f"{','.join(csv_header(top_k)[:8])}... (was it written with another --top-k?)")
    return {row[0] for row in rows[1:] if row}


class _Unclosed:
    """Standard output for a writer: flushed, never closed."""

    def __init__(self, stream):
        self._s = stream

    def write(self, text):
        return self._s.write(text)

    def flush(self):
        self._s.flush()

    def close(self):
        self._s.flush()


# ---- the run -------------------------------------------------------------------------------------

@dataclass
class Summary:
    images: int = 0  # classified
    failures: int = 0
    skipped: int = 0  # already in the output (--resume)
    total: int = 0  # paths to do this run
    wall_s: float = 0.0
    decode_s: float = 0.0  # summed over the decode workers
    engine_s: float = 0.0
    wait_s: float = 0.0  # the main thread waiting for decoded images
    workers: int = 1
    interrupted: bool = False

    @property
    def done(self) -> int:
        return self.images + self.failures

    def line(self) -> str:
        rate = self.done / self.wall_s if self.wall_s > 0 else 0.0
        busy = self.decode_s + self.engine_s
        share = (f"decode {100 * self.decode_s / busy:.0f}% / engine {100 * self.engine_s / busy:.0f}% of busy "
                 f"time (decode {self.decode_s:.2f} s over {self.workers} worker(s), engine {self.engine_s:.2f} s, "
                 f"waiting on decode {self.wait_s:.2f} s)") if busy > 0 else "nothing decoded"
        head = (f"interrupted: {self.done} of {self.total} done" if self.interrupted
                else f"{self.done} images")
        skipped = f", {self.skipped} skipped (already in the output)" if self.skipped else ""
        return (f"{head}: {self.images} classified, {self.failures} failed{skipped}, {self.wall_s:.2f} s, "
                f"{rate:.1f} images/s; {share}")


def _reason(e: BaseException) -> str:
    if isinstance(e, Image.DecompressionBombError):
        return f"decompression bomb: {e}"
    if isinstance(e, FileNotFoundError):
        return "file not found"
    if isinstance(e, IsADirectoryError):
        return "is a directory"
    text = str(e) or type(e).__name__
    return text if isinstance(e, (InputError, OSError)) else f"{type(e).__name__}: {text}"


class _StopFlag:
    """While active, the first SIGINT sets the flag (and puts back the previous handler, so that a
    second one interrupts at once); only installed from the main thread."""

    def __init__(self):
        self.set = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.set = True
        signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def classify_paths(engine, paths, writer, top_k: int = 5, batch: int = DEFAULT_BATCH, workers: int | None = None,
                   draft: bool = True, progress: bool | None = None, report=None, skipped: int = 0) -> Summary:
    """Classify image files with `engine`, writing each batch's results to `writer` as it finishes.

    `progress`: a tqdm bar on stderr (None: only when stderr is a terminal). `report(text)` prints a
    failure (default: stderr). Returns the `Summary`; `interrupted` is set when a SIGINT stopped it.
    """
    if not isinstance(batch, int) or batch < 1:
        raise InputError(f"--batch must be a positive int, got {batch!r}")
    if workers is None:
        workers = max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                             else os.cpu_count() or 1))
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"--workers must be a positive int, got {workers!r}")
    from tqdm import tqdm

    paths = list(paths)
    pp = engine.meta["preprocess"]
    size, cf, mean, std = engine.input_size, pp["crop_fraction"], pp["mean"], pp["std"]
    summary = Summary(total=len(paths), skipped=skipped, workers=workers)
    if progress is None:
        progress = sys.stderr.isatty()
    bar = tqdm(total=len(paths), unit="img", file=sys.stderr, disable=not progress, dynamic_ncols=True,
               smoothing=0.1)
    if progress and isinstance(writer, TableWriter) and writer.echo is None:
        writer.echo = lambda text: tqdm.write(text, file=sys.stdout)
    if report is None:
        def report(text):
            bar.write(text, file=sys.stderr) if progress else print(text, file=sys.stderr, flush=True)
    decode_times = []  # list.append is atomic under the GIL

    def decode(path):
        t = time.perf_counter()
        try:
            return True, load_image(path, size, cf, mean, std, draft=draft)
        except MemoryError:
            return False, "out of memory while decoding"
        except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for corrupt files; each is reported
            return False, _reason(e)
        finally:
            decode_times.append(time.perf_counter() - t)

    buf_paths: list[str] = []
    buf_arrays: list[np.ndarray] = []

    def run_batch():
        t = time.perf_counter()
        preds = engine.classify(np.stack(buf_arrays), top_k=top_k)
        summary.engine_s += time.perf_counter() - t
        writer.results(list(zip(buf_paths, preds)))
        summary.images += len(buf_paths)
        bar.update(len(buf_paths))
        buf_paths.clear()
        buf_arrays.clear()

    window = 2 * batch + 2 * workers  # decoded images in flight: bounded memory
    start = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mbv2-decode")
    pending: deque = deque()
    it = iter(paths)
    try:
        with _StopFlag() as stop:
            try:
                for path in it:
                    pending.append((path, pool.submit(decode, path)))
                    if len(pending) >= window:
                        break
                while pending and not stop.set:
                    path, fut = pending.popleft()
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.append((nxt, pool.submit(decode, nxt)))
                    t = time.perf_counter()
                    while not fut.done() and not stop.set:
                        try:
                            fut.result(timeout=0.2)
                        except TimeoutError:
                            pass
                    summary.wait_s += time.perf_counter() - t
                    if stop.set:
                        break
                    ok, value = fut.result()
                    if not ok:
                        summary.failures += 1
                        report(f"mbv2-engine classify: {path}: {value}")
                        writer.error(path, value)
                        bar.update(1)
                        continue
                    buf_paths.append(path)
                    buf_arrays.append(value)
                    if len(buf_paths) == batch:
                        run_batch()
                if buf_paths and not stop.set:
                    run_batch()
            except KeyboardInterrupt:  # a second Ctrl-C, or one before the handler was in place
                stop.set = True
            summary.interrupted = stop.set
    finally:
        for _, fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        writer.close()
        summary.wall_s = time.perf_counter() - start
        summary.decode_s = sum(decode_times)
    return summary
