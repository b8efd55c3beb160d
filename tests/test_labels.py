"""Labels that say what a number is (issue 24): RePaint's DDPM and its domain, LaMa's LPIPS apart from ours."""
import json
from pathlib import Path

from inpaint_utils import config, report

ROOT = Path(__file__).resolve().parents[1]


def test_each_default_ddpm_says_what_it_was_trained_on():
    assert "faces" in config.ddpm_trained_on(config.DEFAULT_DDPM_MODEL)
    scene = config.ddpm_trained_on(config.DEFAULT_SCENE_DDPM_MODEL)
    assert "church" in scene and "OUT of domain" in scene
    assert config.ddpm_trained_on("models/ddpm-church-256") == scene          # a downloaded copy, by its folder
    assert config.ddpm_trained_on("runs/tiny_ddpm").startswith("unknown")


def test_lamas_lpips_and_ours_never_share_a_column():
    table = report.REPORTED["seed001_irregular"]
    assert "lpips" not in table["columns"] and "lpips_vgg_image" in table["columns"]
    assert all("lpips" not in row for row in table["rows"])
    # notebook 08 puts our SqueezeNet-over-the-hole LPIPS in a column of its own
    nb = json.loads((ROOT / "notebooks" / "08_irregular_holes.ipynb").read_text())
    cell = next("".join(c["source"]) for c in nb["cells"] if "seed001_irregular" in "".join(c["source"]))
    assert '"lpips_squeeze_hole": r.get("lpips_hole")' in cell and '"lpips": ' not in cell
