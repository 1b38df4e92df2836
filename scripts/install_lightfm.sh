#!/usr/bin/env bash
# LightFM 1.17 (the comparison anchor of the recommendation chapters) cannot be installed by
# `pip install lightfm` on current pip/setuptools: its setup.py sets an attribute on __builtins__,
# which is a dict under PEP 517 builds (upstream: github.com/lyst/lightfm/issues/687).
# Running its setup.py directly works, so we fetch the PyPI sdist (pinned by hash) and build a wheel.
set -euo pipefail
PY=${1:?usage: install_lightfm.sh PATH/TO/python}
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute: the build runs elsewhere
VERSION=1.17
SHA256=2b77ada182ccd768a8d7643ab3cfcd8b6e855db09087f7cc7329bd63316697a8
URL=https://files.pythonhosted.org/packages/1f/96/5ec230f5c27811534af0faaa8525f11c1000ee1c24c8a82c0546d0724aea/lightfm-$VERSION.tar.gz

if "$PY" -c "import lightfm, sys; sys.exit(lightfm.__version__ != '$VERSION')" 2>/dev/null; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl --fail --silent --show-error --location --retry 3 -o "$work/lightfm.tar.gz" "$URL"
echo "$SHA256  $work/lightfm.tar.gz" | sha256sum --check --quiet
tar -xzf "$work/lightfm.tar.gz" -C "$work"
if ! (cd "$work/lightfm-$VERSION" && "$PY" setup.py --quiet bdist_wheel --dist-dir "$work/dist" >"$work/build.log" 2>&1); then
  tail -30 "$work/build.log" >&2
  echo "error: building lightfm $VERSION failed (log above)" >&2
  exit 1
fi
"$PY" -m pip install --quiet --no-deps "$work"/dist/lightfm-$VERSION-*.whl
"$PY" -c "import lightfm; print('installed lightfm', lightfm.__version__)"
