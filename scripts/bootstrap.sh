# Sourced by run.py's first start and scripts/test.sh: a virtual environment in .venv with the
# pinned requirements, rebuilt only when requirements.txt changes.
VENV="${MAOSIC_VENV:-$(pwd)/.venv}"
ensure_venv() {
  local stamp="$VENV/.requirements.sha256"
  local want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating the virtual environment $VENV"
    python3 -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "== installing Python requirements into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r requirements.txt
    echo "$want" > "$stamp"
  fi
  # Compile the analyzer's kernels now (cached on disk, ~8 s the first time) rather than inside
  # the first experiment or test that fits a spectrum.
  "$VENV/bin/python" -c 'from maosic.analysis.kernel import warm_up
print(f"== analyzer kernels compiled or loaded in {warm_up():.1f} s")'
}
