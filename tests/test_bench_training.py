"""benchmarks/bench_training.py, run tiny (two steps of two models on a folder of 12 small PNGs): its
table has the columns it promises, a cache-off and a cache-on row per model, and numbers that parse."""
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_training.py"
COLUMNS = ["model", "cache", "device", "batch", "size", "threads", "images/s", "data wait %", "fill s", "speed-up"]


def test_bench_training_prints_images_per_second_and_data_wait_for_each_model(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--steps", "2", "--warmup", "0",
                           "--models", "deepfill,cascade", "--batch-size", "2", "--threads", "1",
                           "--data", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert lines[header].split("  ")[0] == "model" and all(c in lines[header] for c in COLUMNS)
    rows = [line for line in lines[header + 2:] if line.strip()]
    assert len(rows) == 4
    for row, (model, cache) in zip(rows, [("DeepFill v1", "none"), ("DeepFill v1", "memory"),
                                          ("cascade CE", "none"), ("cascade CE", "memory")]):
        assert row.startswith(model)
        cells = row[len(model):].split()
        assert cells[:5] == [cache, "cpu", "2", "64" if model.startswith("DeepFill") else "128", "1"]
        speed, wait = float(cells[5]), float(cells[6])
        assert speed > 0 and 0 <= wait <= 100
        if cache == "memory":
            assert float(cells[7]) >= 0 and cells[8].endswith("x") and float(cells[8][:-1]) > 0
        else:
            assert len(cells) == 7                       # no fill time, no speed-up
    assert "DeepFill v1: 10 training images at 64 px" in done.stdout   # 12 files, the train split


def test_bench_training_refuses_unknown_models():
    done = subprocess.run([sys.executable, str(SCRIPT), "--models", "ce,unet"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "unknown ['unet']" in done.stderr
