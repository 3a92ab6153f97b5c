"""Batch inference with Ray Data: classify a dataset of images on a pool of actors.

    import ray
    from mbv2_engine.ray import ImageClassifier, classify_dataset

    ds = ray.data.read_images("s3://bucket/pictures/", mode="RGB", include_paths=True)
    preds = classify_dataset(ds, "mbv2.npz", top_k=5, actors=4, threads=1)
    preds.write_parquet("predictions/")

`ImageClassifier` is the callable class `Dataset.map_batches` runs: each actor
loads the engine once (with `threads` threads; give the actor as many CPUs,
`num_cpus=threads`, which `classify_dataset` does) and classifies batches of

* decoded images, the `image` column `ray.data.read_images` makes: uint8
  HxWx3 arrays of any size (grayscale HxW and RGBA HxWx4 are converted to
  RGB), each cropped, resized and normalised by `Engine.preprocess` as the
  model's metadata says;
* encoded files, the `bytes` column `ray.data.read_binary_files` makes: each
  file is decoded here, and one that cannot be decoded gets an `error` row
  instead of failing the job (`read_images` fails the whole read on one
  corrupt file);
* preprocessed float32 arrays: an (N, 3, H, W) column, or (3, H, W) rows.

It returns, per row: `label` (top-1 name), `index`, `probability`, the top-k
lists `top_k_labels`, `top_k_indices`, `top_k_probabilities`, and `error`
(null, or why the row has no prediction: then the prediction columns are
null). Every other input column (`path` from `include_paths=True`, ids) is kept.
The result is a pyarrow Table with that fixed schema, so a batch of nothing
but bad files writes to Parquet like any other.

This module is named `ray` inside the package; `import ray` below is the real
Ray (absolute imports).
"""
from __future__ import annotations

import io
import os

import numpy as np

try:
    import pyarrow as pa
    import ray  # the real Ray: absolute import, not this module
    import ray.data
except ImportError as e:  # pragma: no cover - exercised in a subprocess by tests/test_ray.py
    raise ImportError(f'mbv2_engine.ray needs Ray Data (ray, pyarrow): pip install "mbv2-engine[ray]" '
                      f"({e})") from e

from .engine import Engine
from .errors import InputError

__all__ = ["ImageClassifier", "classify_dataset", "INPUT_COLUMNS", "OUTPUT_COLUMNS"]

# The columns an input may come in, in the order they are looked for.
INPUT_COLUMNS = ("image", "bytes")
OUTPUT_COLUMNS = ("label", "index", "probability", "top_k_labels", "top_k_indices",
                  "top_k_probabilities", "error")
_SCHEMA = pa.schema([
    ("label", pa.string()), ("index", pa.int64()), ("probability", pa.float64()),
    ("top_k_labels", pa.list_(pa.string())), ("top_k_indices", pa.list_(pa.int64())),
    ("top_k_probabilities", pa.list_(pa.float64())), ("error", pa.string()),
])


class ImageClassifier:
    """The callable class for `Dataset.map_batches`: an engine per actor, a batch in, predictions out.

    model_path: the weight file; every node that runs an actor must be able to read it.
    top_k: how many classes the top-k lists hold (at most the model's class count).
    threads: the engine's thread count; reserve as many CPUs per actor (`num_cpus=threads`).
    column: the input column; by default `image` if the batch has one, else `bytes`.
    """

    def __init__(self, model_path, top_k: int = 5, threads: int = 1, column: str | None = None):
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise InputError(f"top_k must be a positive int, got {top_k!r}")
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise InputError(f"threads must be a positive int, got {threads!r}")
        self.engine = Engine.load(os.fspath(model_path), threads=threads)
        self.top_k, self.threads, self.column = top_k, threads, column

    def __call__(self, batch) -> pa.Table:
        columns = _as_columns(batch)
        name = self._input_column(columns)
        values = columns[name]
        n = len(values)
        results: list[list | None] = [None] * n  # per row: top-k Predictions, or None
        errors: list[str | None] = [None] * n
        if isinstance(values, np.ndarray) and values.dtype != object and values.dtype != np.uint8:
            if values.dtype != np.float32 or values.ndim != 4 or values.shape[1] != 3:
                raise InputError(f"column {name!r}: a float batch must be (N, 3, H, W) float32, got "
                                 f"{values.dtype} {values.shape}")
            self._classify_group(list(range(n)), values, results, errors)
        else:
            groups: dict[tuple, list[int]] = {}  # rows of one input shape run as one batch
            inputs: list[np.ndarray | None] = [None] * n
            for i in range(n):
                try:
                    inputs[i] = self._prepare(values[i])
                except Exception as e:  # a bad file or array: this row's error, not the job's
                    errors[i] = _describe(e)
                    continue
                groups.setdefault(inputs[i].shape, []).append(i)
            for rows in groups.values():
                self._classify_group(rows, np.stack([inputs[i] for i in rows]), results, errors)
        table = _predictions_table(results, errors)
        kept = [c for c in columns if c != name]
        for j, c in enumerate(kept):
            table = table.add_column(j, c, _to_arrow(c, columns[c]))
        return table

    def _input_column(self, columns: dict) -> str:
        if self.column is not None:
            if self.column not in columns:
                raise InputError(f"the batch has no column {self.column!r}; its columns: {list(columns)}")
            return self.column
        for c in INPUT_COLUMNS:
            if c in columns:
                return c
        raise InputError(f"the batch has none of the columns {list(INPUT_COLUMNS)} (ray.data.read_images "
                         f"makes 'image', read_binary_files 'bytes'); its columns: {list(columns)}; "
                         f"name the input with column=")

    def _prepare(self, value) -> np.ndarray:
        """One row -> float32 (3, H, W): decoded and preprocessed, or a preprocessed array checked."""
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self._decode(bytes(value))
        if isinstance(value, np.ndarray):
            if value.dtype == np.uint8:
                if value.ndim == 3 and value.shape[2] == 1:
                    value = value[:, :, 0]
                if value.ndim == 2 or (value.ndim == 3 and value.shape[2] == 4):  # grayscale, RGBA
                    from PIL import Image
                    value = np.asarray(Image.fromarray(value).convert("RGB"))
                elif not (value.ndim == 3 and value.shape[2] == 3):
                    raise InputError(f"an image must be uint8 HxWx3 (or HxW, HxWx1, HxWx4), got shape "
                                     f"{value.shape}; read files with read_images(..., mode='RGB')")
                return self.engine.preprocess(value)[0]
            if value.dtype == np.float32 and value.ndim == 3 and value.shape[0] == 3:
                return value
            raise InputError(f"a row must be a uint8 HxWx3 image, encoded bytes or a float32 (3, H, W) "
                             f"array, got {value.dtype} {value.shape}")
        raise InputError(f"a row must be a uint8 HxWx3 image, encoded bytes or a float32 (3, H, W) array, "
                         f"got {type(value).__name__}")

    def _decode(self, data: bytes) -> np.ndarray:
        """An encoded file -> float32 (3, H, W); InputError naming why it cannot be decoded."""
        from PIL import Image, UnidentifiedImageError
        if not data:
            raise InputError("cannot decode image: the file is empty")
        try:
            with Image.open(io.BytesIO(data)) as img:  # decoded and converted by Engine.preprocess
                return self.engine.preprocess(img)[0]
        except UnidentifiedImageError:
            raise InputError(f"cannot decode image: not an image format Pillow reads ({len(data)} bytes, "
                             f"starting {data[:8]!r})") from None
        except (OSError, SyntaxError, EOFError) as e:  # what Pillow raises for a damaged file
            raise InputError(f"cannot decode image: {e}") from e

    def _classify_group(self, rows: list[int], batch: np.ndarray, results: list, errors: list) -> None:
        """Classify `batch` (the rows `rows`, one shape); a batch the engine refuses (NaN, Inf, too
        small) is retried row by row, so only the rows at fault get an error."""
        try:
            preds = self.engine.classify(batch, self.top_k)
        except InputError as e:
            if len(rows) == 1:
                errors[rows[0]] = _describe(e)
                return
            for j, i in enumerate(rows):
                try:
                    results[i] = self.engine.classify(batch[j:j + 1], self.top_k)[0]
                except InputError as e:
                    errors[i] = _describe(e)
            return
        for i, p in zip(rows, preds):
            results[i] = p


def classify_dataset(ds, model_path, *, top_k: int = 5, threads: int = 1, actors: int = 1,
                     batch_size: int = 64, column: str | None = None, **map_batches_args):
    """`ds.map_batches(ImageClassifier, ...)` with `actors` actors of `threads` CPUs each."""
    if not isinstance(actors, int) or isinstance(actors, bool) or actors < 1:
        raise InputError(f"actors must be a positive int, got {actors!r}")
    return ds.map_batches(ImageClassifier, fn_constructor_kwargs=dict(model_path=os.fspath(model_path),
                                                                      top_k=top_k, threads=threads, column=column),
                          batch_size=batch_size, num_cpus=threads,
                          compute=ray.data.ActorPoolStrategy(size=actors), **map_batches_args)


def _as_columns(batch) -> dict:
    if isinstance(batch, dict):
        return batch
    if type(batch).__module__.startswith("pandas"):
        return {c: batch[c].to_numpy() for c in batch.columns}
    raise InputError(f"expected a batch of numpy columns (map_batches' default batch_format) or a pandas "
                     f"DataFrame, got {type(batch).__name__}")


def _describe(e: Exception) -> str:
    return f"{type(e).__name__}: {e}"


def _predictions_table(results: list, errors: list) -> pa.Table:
    def top(p, f):
        return None if p is None else f(p[0])

    cols = {
        "label": [top(p, lambda q: q.label) for p in results],
        "index": [top(p, lambda q: q.index) for p in results],
        "probability": [top(p, lambda q: q.probability) for p in results],
        "top_k_labels": [None if p is None else [q.label for q in p] for p in results],
        "top_k_indices": [None if p is None else [q.index for q in p] for p in results],
        "top_k_probabilities": [None if p is None else [q.probability for q in p] for p in results],
        "error": errors,
    }
    return pa.table({k: pa.array(v, _SCHEMA.field(k).type) for k, v in cols.items()}, schema=_SCHEMA)


def _to_arrow(name: str, values) -> pa.Array:
    """A kept input column (paths, ids, ...) as an Arrow array."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if isinstance(values, np.ndarray) and values.ndim > 1:
        from ray.data.extensions import ArrowTensorArray
        return ArrowTensorArray.from_numpy(values)
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise InputError(f"cannot keep column {name!r} in the output ({e}); drop it before classifying "
                         f"(ds.drop_columns)") from e
