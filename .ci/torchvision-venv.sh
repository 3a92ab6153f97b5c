#!/usr/bin/env bash
# A separate virtualenv with torchvision and timm, for tests/test_import_timm.py.
#
# timm imports torchvision, and no torchvision release installs beside the main
# environment's torch 2.13.0 (CPU). This venv holds its own torch (a CUDA build,
# about 5.5 GB, that runs on the CPU too); the tests only run its python in a
# subprocess to build models and save their state dicts and outputs.
#
# Usage: .ci/torchvision-venv.sh DIR   (then export MBV2_TORCHVISION_PYTHON=DIR/bin/python)
# Idempotent: a DIR whose python already imports torch, torchvision and timm at
# these pins is reused as it is.
set -euo pipefail
if [ "$#" -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

check='import torch, torchvision, timm
assert torch.__version__.split("+")[0] == "2.14.1", torch.__version__
assert torchvision.__version__.split("+")[0] == "0.29.1", torchvision.__version__
assert tuple(int(p) for p in timm.__version__.split(".")[:2]) >= (1, 0), timm.__version__'

if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$check" 2>/dev/null; then
    echo "== reusing $dir (torch, torchvision and timm import)"
    exit 0
fi

echo "== creating $dir: torch 2.14.1, torchvision 0.29.1, timm"
python3 -m venv "$dir"
"$dir/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" "timm>=1.0"
"$dir/bin/python" -c "$check"
echo "== $dir/bin/python imports torch, torchvision and timm"
