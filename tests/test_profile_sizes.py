"""Every profile of every notebook builds its data and its masks at the sizes its models use (no training).

Issue 24 found notebook 08's ``full`` profile unable to run: PConv trains at 512 px (its paper's size) while the
notebook built every batch at DeepFill v2's 256, so ``PConvTask`` drew 512-px masks for 256-px images and the
loop's ``check_image_mask`` stopped it. Here each notebook's models are built from each profile's settings, as the
notebook builds them (``cli.METHODS`` builders, the cascade's configs), at a tiny width (the widths do not change a
size), and fed a batch of data at the size the notebook gives that model: the task's own training holes
(``task.sample``) and, where the notebook scores the model at another size, its evaluation masks must fit.
"""
from __future__ import annotations

import pytest
import torch

from inpaint_utils import cli, config, data, masks
from inpaint_utils.validation import check_image_mask

#: the width settings of the profiles, shrunk: sizes stay the profile's, the networks become cheap
TINY_WIDTHS = {"base_channels": 4, "bottleneck_dim": 8, "cnum": 4, "critic_cnum": 4, "disc_cnum": 4}

#: what each training notebook trains through ``cli.METHODS`` (03's cascade is built from its own configs)
NOTEBOOK_METHODS = {"02_context_encoder": ("ce",), "04_glcic": ("glcic",), "05_contextual_attention": ("deepfill",),
                    "08_irregular_holes": ("pconv", "deepfill_v2")}

CASES = [(nb, profile) for nb, table in config.PROFILES.items() for profile in table]


def _images(size: int, n: int = 3) -> data.InMemoryImages:
    """``n`` non-square random images preprocessed to ``size`` as a source's dataset is (resize + centre crop)."""
    g = torch.Generator().manual_seed(size)
    return data.InMemoryImages([torch.rand(3, 40 + 7 * k, 52, generator=g) for k in range(n)], size=size)


def _tiny(settings: dict) -> dict:
    out = {k: (TINY_WIDTHS[k] if k in TINY_WIDTHS else v) for k, v in settings.items()}
    for key in ("features", "pconv_features"):
        if key in out:
            out[key] = "random"                # the loss network is not a size: offline random weights
    out["fill"] = (0.5, 0.5, 0.5)              # the mean colour of the data does not change a size either
    return out


def _check_task_at(task, size: int, generator: torch.Generator) -> None:
    batch = data.first_images(_images(size), 2)                                           # (2, 3, size, size)
    out = task.sample(batch, generator)
    for key, value in out.items():
        assert value.shape[-2:] == batch.shape[-2:], f"{key}: {tuple(value.shape)} for a batch of {tuple(batch.shape)}"


def _data_size(notebook: str, method: str, settings: dict, cfg: dict) -> int:
    """The size notebook ``notebook`` builds ``method``'s training data at (what its data cells do)."""
    return settings["image_size"] if notebook == "08_irregular_holes" else cfg["image_size"]


@pytest.mark.parametrize("notebook,profile", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_every_profile_builds_data_and_masks_at_its_models_sizes(notebook, profile):
    cfg = config.settings(notebook, profile)
    g = torch.Generator().manual_seed(0)
    if notebook in NOTEBOOK_METHODS:
        for method in NOTEBOOK_METHODS[notebook]:
            settings = _tiny(cli.method_settings(method, profile))
            recipe = cli.METHODS[method].build(settings, _images(8), 0)
            _check_task_at(recipe.task, _data_size(notebook, method, settings, cfg), g)
        if notebook == "08_irregular_holes":             # both are scored at v2's size on LaMa's sets
            size = cfg["v2_image_size"]
            test = data.first_images(_images(size), 2)
            for method in NOTEBOOK_METHODS[notebook]:
                net = cli.METHODS[method].build(_tiny(cli.method_settings(method, profile)), _images(8), 0).task
                net = net.generator.eval()
                for kind in masks.LAMA_KINDS:
                    mask = masks.lama_mask(kind, size, batch=2, seed=1)
                    with torch.no_grad():
                        assert net.predict_full(test, mask).shape == test.shape
    elif notebook == "03_cascade_ce_nsd":
        from inpaint_utils.models.cascade import CascadeConfig, CascadeContextEncoder, CascadeTask, DownscaledImages
        from inpaint_utils.models.context_encoder import (ContextEncoderDiscriminator, ContextEncoderGenerator,
                                                          ContextEncoderTask)

        size = cfg["image_size"]
        for kind, output in (("center", "center"), ("blocks", "full")):
            cascade_cfg = CascadeConfig.build(output, size, overlap=0, base_channels=4, bottleneck_dim=8,
                                              fill=(0.5, 0.5, 0.5))
            args = {} if kind == "center" else {"mask_kind": "blocks", "mask_ratio": [0.05, 0.25]}
            g64 = ContextEncoderGenerator(cascade_cfg.ce64, seed=0)
            small = data.first_images(DownscaledImages(_images(size)), 2)                # the 64 CE's data
            task64 = ContextEncoderTask(g64, ContextEncoderDiscriminator(cascade_cfg.ce64, seed=1), **args)
            assert task64.sample(small, g)["completed"].shape == small.shape
            cascade = CascadeContextEncoder(g64, ContextEncoderGenerator(cascade_cfg.ce128, seed=2))
            task = CascadeTask(cascade, ContextEncoderDiscriminator(cascade_cfg.ce128, seed=3), **args)
            _check_task_at(task, size, g)
    else:                      # 00, 01, 06, 07: the data and every mask kind at the profile's image size
        size = cfg["image_size"]
        batch = data.first_images(_images(size), 2)
        for kind in masks.MASK_KINDS:
            check_image_mask(batch, masks.make_mask(kind, size, 0.25, batch=2, generator=g))
        if notebook == "06_stable_diffusion":             # the VAE halves the side three times
            assert cfg["sd_size"] % 8 == 0 and cfg["repaint_size"] % 8 == 0
        if notebook == "07_comparison":   # the models of 02-05 of this profile fill 07's images, through the
            from inpaint_utils.inference import Inpainter      # wrapper 07 loads them with (it resizes to the model's)

            for method in ("glcic", "deepfill"):
                settings = _tiny(cli.method_settings(method, profile))
                net = cli.METHODS[method].build(settings, _images(8), 0).task.generator.eval()
                fill = Inpainter(method, lambda x, m, net=net: net.predict_full(x, m), {},
                                 image_size=net.config.image_size)
                mask = masks.make_mask("irregular", size, 0.25, batch=2, generator=g)
                with torch.no_grad():
                    assert fill(batch, mask).shape == batch.shape


def test_the_defect_is_caught_pconv_full_refuses_batches_at_v2_size():
    """What notebook 08's full profile did before: a 256-px batch for the 512-px PConv. The check above would
    have failed on it (so it tests something), and the message names the sizes."""
    settings = _tiny(cli.method_settings("pconv", "full"))
    task = cli.METHODS["pconv"].build(settings, _images(8), 0).task
    v2_size = config.settings("08_irregular_holes", "full")["v2_image_size"]
    assert settings["image_size"] != v2_size
    with pytest.raises(ValueError, match="512|256"):
        _check_task_at(task, v2_size, torch.Generator().manual_seed(0))
