#!/usr/bin/env bash
# The prepared GPU check of issue 15 (item 3); bench/README.md says how to run it on a lent GPU machine.
#
#   bash bench/device_check.sh OUT_DIR [--cpu-dry-run] [--data DIR] [--skip PHASE...]   run the check
#   bash bench/device_check.sh --prepare [DIR]     here: fill DIR (default .device/, git-ignored) with the parts to carry
#   bash bench/device_check.sh --stage PART_DIR    there: add one carried part to the stage folder, then exit
#
# The GPU image has python3 with torch, torch-geometric, numpy, pandas, scikit-learn, seaborn, pyyaml and pytest but
# neither faiss, fastcore nor this package. The check installs faiss-cpu and fastcore from the wheels found in the
# stage folder (or in .device/wheels/) when python3 lacks them, and this package with --no-deps from the tree, into
# a target folder on PYTHONPATH; Fashion-MNIST is read from <stage>/fashion-mnist/ (or --data / $SCOREEXTRA_DATA).
# A call carries at most 64 MiB with the tree (about 42 MiB of it are the committed runs/), so the wheels (19 MiB) and
# Fashion-MNIST (30 MiB) travel in three parts staged by three calls on the same warm machine (--prepare prints them).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
STAGE=${DEVICE_CHECK_STAGE:-/tmp/scoreextra_device_stage}
PART_MAX=${DEVICE_CHECK_PART_MAX:-19000000}   # bytes per carried part (64 MiB limit minus the tree)
usage() { sed -n '4,6p' "$0" | sed 's/^# *//' >&2; exit 2; }

prepare() {   # here, with network: wheels for the GPU image's Python 3.12 and the Fashion-MNIST files, in parts
    local dir=${1:-$ROOT/.device} fm
    fm=$("$PY" -c "from scoreextra.readers import fashion_mnist_dir; print(fashion_mnist_dir())")
    rm -rf "$dir"; mkdir -p "$dir/1" "$dir/2" "$dir/3"
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 \
        -d "$dir/1" "faiss-cpu==$("$PY" -c 'import faiss; print(faiss.__version__)')" \
        "fastcore==$("$PY" -c 'import fastcore; print(fastcore.__version__)')"
    mkdir -p "$dir/2/fashion-mnist" "$dir/3/fashion-mnist"
    split -b "$PART_MAX" -d "$fm/train-images-idx3-ubyte.gz" "$dir/2/fashion-mnist/train-images-idx3-ubyte.gz.part-"
    mv "$dir/2/fashion-mnist/train-images-idx3-ubyte.gz.part-0"[1-9] "$dir/3/fashion-mnist/"
    cp "$fm"/t10k-images-idx3-ubyte.gz "$fm"/t10k-labels-idx1-ubyte.gz "$fm"/train-labels-idx1-ubyte.gz "$dir/3/fashion-mnist/"
    (cd "$fm" && sha256sum ./*-ubyte.gz) > "$dir/3/fashion-mnist/SHA256SUMS"
    du -sh "$dir"/[123]
    local rel=${dir#"$ROOT"/}
    echo "carry one part per call, on the same warm machine (run: carry=[\"$rel/N\"]):"
    echo "  1: bash bench/device_check.sh --stage $rel/1"
    echo "  2: bash bench/device_check.sh --stage $rel/2"
    echo "  3: bash bench/device_check.sh --stage $rel/3 && bash bench/device_check.sh \$OUT"
}

stage() {   # there: copy one part into the stage folder; join split files once all their parts are there
    mkdir -p "$STAGE"; cp -r "$1"/. "$STAGE"/
    local sums=$STAGE/fashion-mnist/SHA256SUMS f
    if [[ -f $sums ]]; then
        for f in "$STAGE"/fashion-mnist/*.part-00; do
            [[ -e $f ]] && cat "${f%-00}"-* > "${f%.part-00}" && rm -f "${f%-00}"-*
        done
        (cd "$STAGE/fashion-mnist" && sha256sum -c --quiet SHA256SUMS) || { echo "staged Fashion-MNIST differs from SHA256SUMS" >&2; exit 1; }
    fi
    echo "staged $1 into $STAGE: $(ls "$STAGE" | tr '\n' ' ')"
}

install() {   # dependencies from wheels where python lacks them; this package --no-deps from the tree (a copy: no build/ here)
    local site=$1 wheels="" src info
    if ! "$PY" -c "import faiss, fastcore" 2>/dev/null; then
        for d in "$STAGE" "$ROOT/.device/wheels" "$ROOT/.device/1"; do compgen -G "$d/*.whl" >/dev/null && { wheels=$d; break; }; done
        [[ -n $wheels ]] || { echo "$PY lacks faiss/fastcore and no wheels were staged (bash bench/device_check.sh --prepare)" >&2; exit 2; }
        "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl
    fi
    src=$(mktemp -d); cp -r "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/scoreextra" "$src/"
    local how="pip install --no-deps from the tree"
    if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$site" "$src" >&2; then
        how="copied from the tree (pip could not build it, e.g. setuptools < 77 there)"; cp -r "$ROOT/scoreextra" "$site/"
    fi
    rm -rf "$src"
    echo "{\"package\": \"$how into $site\", \"wheels\": \"${wheels:-none needed}\"}"
}

case "${1:-}" in
    ""|-h|--help) usage ;;
    --prepare) shift; prepare "$@"; exit ;;
    --stage) [[ -n ${2:-} ]] || usage; stage "$2"; exit ;;
esac
OUT=$1; shift
mkdir -p "$OUT"
SITE=$(mktemp -d /tmp/scoreextra_site.XXXX); trap 'rm -rf "$SITE"' EXIT
export DEVICE_CHECK_INSTALL; DEVICE_CHECK_INSTALL=$(install "$SITE")
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
DATA=()
[[ -d $STAGE/fashion-mnist && " $* " != *" --data "* ]] && DATA=(--data "$STAGE")
cd "$ROOT"
"$PY" bench/device_check.py "$OUT" "${DATA[@]}" "$@"
