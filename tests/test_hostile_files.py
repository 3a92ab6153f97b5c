"""Both front doors, one reader: every fixture of tests/cpp/make_fixtures.py (valid files and one
per loader defect ever found) gets the manifest's verdict from the reader, the same verdict from
`Engine.load` as from the C API, and nothing a file declares is allocated before it is checked.

The small valid fixtures are width 0.01 (every channel 8), a network the reader accepts but the
fused core cannot run (block 0 gets a residual): both doors then say "invalid format"."""
import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mbv2_engine
from mbv2_engine import Engine
from mbv2_engine import format as wformat
from mbv2_engine.cli import cmake_dir
from mbv2_engine.errors import STATUS_ERRORS, Mbv2Error

MAKE_FIXTURES = Path(__file__).resolve().parent / "cpp" / "make_fixtures.py"
LIBRARY = cmake_dir().parents[1] / "libmbv2.so.0"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    out = tmp_path_factory.mktemp("npz_fixtures")
    subprocess.run([sys.executable, str(MAKE_FIXTURES), str(out)], check=True)
    expected = json.loads((out / "manifest.json").read_text())["expected"]
    assert len(expected) > 50 and set(expected.values()) >= {"ok", "invalid format", "unsupported version"}
    return out, expected


def python_verdict(path: Path, load=lambda path: Engine.load(path, threads=1, isa="ref")) -> str:
    try:
        load(path)
    except Mbv2Error as e:
        # The most specific class: UnsupportedVersionError is a ModelFormatError too.
        return next(name for name, cls in STATUS_ERRORS.items() if type(e) is cls)
    return "ok"


def c_verdict(lib, path: Path) -> str:
    engine = ctypes.c_void_p()
    status = lib.mbv2_engine_create_from_file(str(path).encode(), None, ctypes.byref(engine))
    if status == 0:
        lib.mbv2_engine_destroy(engine)
    return lib.mbv2_status_string(status).decode()


def test_the_reader_gives_every_fixture_its_verdict(fixtures):
    out, expected = fixtures
    got = {name: python_verdict(out / name, wformat.load) for name in expected}
    wrong = {name: (got[name], want) for name, want in expected.items() if got[name] != want}
    assert not wrong, f"(reader, manifest) where they differ: {wrong}"


@pytest.mark.skipif(not LIBRARY.is_file(), reason="needs the installed wheel's libmbv2 (pip install .)")
def test_the_c_api_agrees_with_python_on_every_fixture(fixtures):
    lib = ctypes.CDLL(str(LIBRARY))
    lib.mbv2_status_string.restype = ctypes.c_char_p
    out, expected = fixtures
    both = {name: (python_verdict(out / name), c_verdict(lib, out / name)) for name in expected}
    assert not {name: v for name, v in both.items() if v[0] != v[1]}, "(Python, C API) where they differ"
    refused = {name: v[0] for name, v in both.items() if expected[name] != "ok"}
    assert refused == {name: want for name, want in expected.items() if want != "ok"}
    assert {v[0] for name, v in both.items() if expected[name] == "ok"} == {"ok", "invalid format"}


# Peak memory of loading every fixture in a fresh process: the largest valid file
# is 14 MB, so anything near the sizes the hostile ones declare (gigabytes) fails.
PROBE = """
import re, sys
from pathlib import Path
from mbv2_engine import Engine, Mbv2Error
for path in sorted(Path(sys.argv[1]).glob("*.npz")) + [Path(sys.argv[2])]:
    try:
        Engine.load(path, threads=1, isa="ref")
    except Mbv2Error:
        pass
# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
print(int(re.search(r"VmHWM:\\s*(\\d+) kB", open("/proc/self/status").read()).group(1)) // 1024)
"""


def test_nothing_declared_is_allocated_before_it_is_checked(fixtures, tmp_path):
    out, _ = fixtures
    sparse = tmp_path / "sparse.npz"
    with open(sparse, "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(3 << 30)  # 3 GB of holes: costs nothing unless someone reads it all
    # From tmp_path, so `-c` imports the package this test imported, not a source tree in the cwd.
    package_root = str(Path(mbv2_engine.__file__).parents[1])
    peak_mb = int(subprocess.run([sys.executable, "-c", PROBE, str(out), str(sparse)], check=True, cwd=tmp_path,
                                 env={**os.environ, "PYTHONPATH": package_root}, capture_output=True,
                                 text=True).stdout)
    assert peak_mb < 400, f"loading the fixtures peaked at {peak_mb} MB"
