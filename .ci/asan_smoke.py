"""The Python front door on an AddressSanitizer + UBSan build of mbv2_engine._core (.ci/cpp-tests.sh):
load every valid fixture and refuse every hostile one through the reader, run a batch, classify
an image, on one and two threads. Any sanitizer report aborts the process, so the script only
has to finish."""
import sys
from pathlib import Path

import numpy as np

from mbv2_engine import Engine, Mbv2Error


def main(fixtures: Path) -> int:
    loaded = refused = 0
    for path in sorted(fixtures.glob("*.npz")):
        try:
            Engine.load(path, threads=1, isa="ref")
            loaded += 1
        except Mbv2Error:
            refused += 1
    shapes = Path(__import__("mbv2_engine").__file__).parent / "data" / "shapes.npz"
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 70), dtype=np.float32)
    for threads in (1, 2):
        engine = Engine.load(shapes, threads=threads)
        assert engine.run(x).shape == (3, 10)
        picture = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
        assert len(engine.classify(picture, top_k=3)) == 3
    print(f"ASan smoke: {loaded} fixtures loaded, {refused} refused, the shapes model ran on 1 and 2 threads")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
