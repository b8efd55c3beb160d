"""benchmarks/bench_training.py, run tiny (one or two steps on a folder of 12 small PNGs): its precision table
has a float32 / bfloat16 x contiguous / channels_last row per model with its ratio to float32, its cache table
a cache-off and a cache-on row per model, both the columns they promise and numbers that parse (no speed is
asserted)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_training.py"
PRECISION_COLUMNS = ["model", "precision", "memory format", "device", "batch", "size", "threads", "images/s",
                     "data wait %", "vs float32"]
COLUMNS = ["model", "cache", "device", "batch", "size", "threads", "images/s", "data wait %", "fill s", "speed-up"]


def pngs(folder):
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def table_rows(stdout, columns):
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert lines[header].split("  ")[0] == "model" and all(c in lines[header] for c in columns)
    return [line for line in lines[header + 2:] if line.strip()]


def test_bench_training_compares_float32_bfloat16_and_memory_formats_side_by_side(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--steps", "1", "--warmup", "0",
                           "--models", "cascade", "--batch-size", "2", "--threads", "1", "--data", str(pngs(tmp_path))],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "native BF16 on this CPU: " in done.stdout
    rows = table_rows(done.stdout, PRECISION_COLUMNS)
    assert len(rows) == 4
    for row, (dtype, layout) in zip(rows, [("float32", "contiguous"), ("bfloat16", "contiguous"),
                                           ("float32", "channels_last"), ("bfloat16", "channels_last")]):
        assert row.startswith("cascade CE")
        cells = row[len("cascade CE"):].split()
        assert cells[:6] == [dtype, layout, "cpu", "2", "128", "1"] and len(cells) == 9
        speed, wait, ratio = float(cells[6]), float(cells[7]), cells[8]
        assert speed > 0 and 0 <= wait <= 100 and ratio.endswith("x") and float(ratio[:-1]) > 0
        if (dtype, layout) == ("float32", "contiguous"):
            assert ratio == "1.00x"


def test_bench_training_prints_images_per_second_and_data_wait_for_each_model(tmp_path):
    pngs(tmp_path)
    done = subprocess.run([sys.executable, str(SCRIPT), "--compare", "cache", "--device", "cpu", "--steps", "2",
                           "--warmup", "0",
                           "--models", "deepfill,cascade", "--batch-size", "2", "--threads", "1",
                           "--data", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = table_rows(done.stdout, COLUMNS)
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
