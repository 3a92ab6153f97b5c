"""Every input a fuzz target found a defect with (tests/fuzz/regressions), replayed: each must now
be handled cleanly. `python-*` files go through tests/fuzz/fuzz_python.py's dispatch (first byte:
which front door), `reader-*` ones through the weight-file reader (loaded or refused with an
Mbv2Error; .ci/fuzz-tests.sh also replays them through the sanitized fuzz binaries)."""
import sys
from pathlib import Path

import pytest

from mbv2_engine import Mbv2Error
from mbv2_engine import format as wformat

FUZZ = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ))
import fuzz_python  # noqa: E402

FOUND = sorted((FUZZ / "regressions").iterdir())


@pytest.mark.parametrize("path", FOUND, ids=[p.name for p in FOUND])
def test_found_input_is_refused_cleanly(path):
    data = path.read_bytes()
    if path.name.startswith("python-"):
        fuzz_python.test_one_input(data)  # raises anything but an Mbv2Error
    else:
        try:
            wformat.loads(data)
        except Mbv2Error:
            pass
