#!/usr/bin/env bash
# Build the wheel and the sdist, install each into a fresh virtual environment that holds only
# torch, and check that the package imports and its command runs there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

.venv/bin/python -m build --sdist --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 \
    || { cat "$work/build.log"; exit 1; }
ls "$work/dist"

for artefact in "$work"/dist/*.whl "$work"/dist/*.tar.gz; do
    env_dir="$work/env-$(basename "$artefact")"
    "$PYTHON" -m venv "$env_dir"
    "$env_dir/bin/pip" install -q "$TORCH_SPEC"
    "$env_dir/bin/pip" install -q "$artefact"
    (
        cd "$work"  # not the source tree, so the installed copy is the one imported
        "$env_dir/bin/python" - <<'PY'
import rankloss
from rankloss import losses
names = losses.available()
assert len(names) > 20, names
assert rankloss.__file__.find("site-packages") >= 0, rankloss.__file__
print(f"rankloss {rankloss.__version__}: {len(names)} losses from {rankloss.__file__}")
PY
        "$env_dir/bin/rankloss" --help >/dev/null
        "$env_dir/bin/python" -m rankloss --help >/dev/null
    )
    echo "ok: $(basename "$artefact")"
done
