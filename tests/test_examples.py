"""examples/train_mlp.py trains: the loss falls and the compiled step matches eager, whichever
backend is active, including when the C compiler is missing (compile falls back to eager)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_mlp.py"


def _train(tmp_path: Path, *flags: str, **env: str) -> str:
    if not EXAMPLE.exists():
        pytest.skip("examples/ is not beside the tests (installed-wheel run)")
    environ = dict(os.environ, GRADGEN_CACHE_DIR=str(tmp_path / "cache"), **env)
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--small", "--steps", "40", *flags],
                          capture_output=True, text=True, timeout=300, env=environ)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _check_trains(out: str) -> None:
    losses = [float(v) for v in re.findall(r"^step +\d+ +loss (\S+)$", out, re.M)]
    assert len(losses) >= 3, out
    assert losses[-1] < 0.75 * losses[0], out
    accuracy = float(re.search(r"final accuracy on all \d+ samples: ([\d.]+)%", out).group(1))
    assert accuracy > 30.0, out  # 10 classes: chance is ~10%
    assert re.search(r"step time .* ms, eager autograd .* ms, speed-up [\d.]+x; "
                     r"gradients match eager: True$", out, re.M), out


def test_train_mlp_loss_falls(tmp_path):
    _check_trains(_train(tmp_path))


@pytest.mark.parametrize("backend", ["interpret", "eager"])
def test_train_mlp_other_backends(tmp_path, backend):
    _check_trains(_train(tmp_path, "--backend", backend))


def test_train_mlp_without_a_c_compiler(tmp_path):
    """No C compiler: the step runs eagerly, says so, and training still works."""
    out = _train(tmp_path, CC=str(tmp_path / "no-such-cc"))
    _check_trains(out)
    if "compile backend: c" in out:
        assert "note: the compiled step ran eagerly" in out, out
