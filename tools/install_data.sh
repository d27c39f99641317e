#!/usr/bin/env bash
# Install Fashion-MNIST (Debian package dataset-fashion-mnist: the real 60k/10k idx files
# in /usr/share/datasets/fashion-mnist). Never fails the build: tests that need the data
# skip with a reason when it is absent.
set -u
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: apt-get not found; Fashion-MNIST not installed. Fashion-MNIST tests and demos will be skipped."
  echo "      Put the idx files in \$SCOREEXTRA_DATA/fashion-mnist/ to use them."
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo -n"
echo "installing Fashion-MNIST (apt package dataset-fashion-mnist, ~31 MB)…"
if ! ($sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
      ($sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)); then
  echo "note: could not install dataset-fashion-mnist with apt-get (no root or no network);"
  echo "      Fashion-MNIST tests and demos will be skipped."
fi
exit 0
