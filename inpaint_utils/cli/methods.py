"""What ``inpaint train`` can train (part of :mod:`inpaint_utils.cli`): each method's builder of its
training task (:class:`Recipe`), the :data:`METHODS` registry and the settings a profile gives
a method (:func:`method_settings`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

PROFILE_NAMES = ("smoke", "cpu", "gpu", "full")


@dataclass
class Recipe:
    """What a method's builder returns: the training task (:class:`inpaint_utils.train.Task`) and the
    ``model_name`` / ``model_config`` stored in its checkpoints."""

    task: Any
    model_name: str
    model_config: dict[str, Any]


@dataclass(frozen=True)
class Method:
    """A method ``inpaint train`` can train.

    ``notebook``: the :data:`inpaint_utils.config.PROFILES` entry whose profile gives the defaults; the
    settings handed to ``build`` must end up with ``num_steps`` and ``batch_size`` (the builder may set
    them from the profile's own names) and may hold ``image_size``, ``log_every``, ``sample_every``,
    ``checkpoint_every``. ``build(settings, dataset, seed) -> Recipe`` builds fresh networks (seeded)
    and the task. ``preprocess``: :func:`inpaint_utils.data.preprocess` mode of the training images.
    ``prefix``: for a profile that holds several models' numbers (notebook 08's), the prefix of this
    method's own keys (``"pconv_"``: ``pconv_batch_size`` is its ``batch_size``; :func:`method_settings`).
    """

    notebook: str
    build: Callable[[dict[str, Any], Any, int], Recipe]
    preprocess: str = "256"
    description: str = ""
    prefix: str = ""


def _fill_colour(settings: dict[str, Any], dataset: Any) -> tuple[float, ...]:
    """The colour the hole is filled with: ``settings["fill"]`` when the run being resumed has one (its
    checkpoint's, so that adding images to ``--data`` does not change the model), else the mean pixel
    of the training images."""
    from .. import data

    if settings.get("fill") is not None:
        return tuple(float(v) for v in settings["fill"])
    return tuple(data.mean_color(dataset, max_images=500).tolist())


def build_context_encoder(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 02's Context Encoder: the centre 64x64 hole (of 128) filled with the training images'
    mean colour (:func:`_fill_colour`), generator + discriminator, ``ContextEncoderTask`` with the profile's widths and lr."""
    from ..models.context_encoder import (ContextEncoderConfig, ContextEncoderDiscriminator, ContextEncoderGenerator,
                                         ContextEncoderTask)

    fill = _fill_colour(settings, dataset)
    cfg = ContextEncoderConfig(image_size=settings["image_size"], base_channels=settings["base_channels"],
                               bottleneck_dim=settings["bottleneck_dim"], overlap=0, fill=fill)
    generator = ContextEncoderGenerator(cfg, seed=seed)
    discriminator = ContextEncoderDiscriminator(cfg, seed=seed + 1)
    return Recipe(ContextEncoderTask(generator, discriminator, lr=settings["lr"]), generator.model_name, cfg.to_dict())


def build_glcic(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 04's GLCIC: completion network + context discriminator at the profile's width, the hole
    filled with the training images' mean pixel, ``GLCICTask`` with the profile's phases (``t_c``,
    ``t_d``; not rescaled by ``--steps``, as in the notebook), ``alpha``, optimizer and lr."""
    from ..models.glcic import CompletionNetwork, GLCICConfig, GLCICDiscriminator, GLCICTask

    fill = _fill_colour(settings, dataset)
    cfg = GLCICConfig(image_size=settings["image_size"], base_channels=settings["base_channels"], fill=fill)
    generator = CompletionNetwork(cfg, seed=seed)
    discriminator = GLCICDiscriminator(cfg, seed=seed + 1)
    task = GLCICTask(generator, discriminator, t_c=settings["t_c"], t_d=settings["t_d"], alpha=settings["alpha"],
                     optimizer=settings["optimizer"], lr=settings["lr"])
    return Recipe(task, generator.model_name, cfg.to_dict())


def build_deepfill(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 05's DeepFill v1 (contextual attention), Biradar et al.'s ``hole`` input mode (the grey-filled
    hole: the mode ``inpaint fill --method deepfill`` runs): generator + WGAN-GP critics at the profile's
    widths, ``DeepFillTask`` with its lr and critic steps. The profile has steps per input mode
    (``steps_hole``); without ``--steps`` the run takes ``steps_hole``."""
    from ..models.deepfill import DeepFillConfig, DeepFillCritic, DeepFillGenerator, DeepFillTask

    settings.setdefault("num_steps", settings["steps_hole"])
    cfg = DeepFillConfig(image_size=settings["image_size"], cnum=settings["cnum"], critic_cnum=settings["critic_cnum"])
    generator = DeepFillGenerator(cfg, seed=seed)
    critic = DeepFillCritic(cfg, seed=seed + 1)
    task = DeepFillTask(generator, critic, lr=settings["lr"], critic_steps=settings["critic_steps"], input_mode="hole")
    return Recipe(task, generator.model_name, cfg.to_dict())


def build_partial_conv(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 08's partial-convolution U-Net (Liu et al. 2018): ``PConvUNet`` at the profile's width, trained
    by ``PConvTask`` on free-form holes (its default :func:`~inpaint_utils.models.irregular_masks`, 1-60 %) with
    the paper's loss on the feature network ``features`` (:func:`inpaint_utils.losses.feature_network`:
    ``"vgg16"``, the paper's, read from ``$INPAINT_VGG16`` or downloaded; ``"squeeze"``, SqueezeNet 1.1 ImageNet,
    the offline substitute; ``"auto"``: VGG-16 when present or downloadable, else SqueezeNet, with a notice;
    ``"random"``: a random VGG-16, offline), Adam at ``lr``, then from step ``finetune_step`` on (not rescaled by
    ``--steps``, as GLCIC's phases) at ``finetune_lr`` with the encoder's BatchNorm frozen. The network chosen is
    recorded in the model's config (``loss_features``, so in every checkpoint) and written back to
    ``settings["features"]`` (the run's record). Resuming (``settings["resumed_features"]``, the checkpoint's):
    ``auto`` takes the checkpoint's network, another one than the checkpoint's is refused."""
    from ..losses import feature_network
    from ..models.partial_conv import PConvConfig, PConvTask, PConvUNet
    from .shared import _UsageError

    features, resumed = settings["features"], settings.pop("resumed_features", None)
    if resumed is not None:
        if features == "auto":
            features = resumed
        elif features != resumed:
            raise _UsageError(f"--features {features}: the checkpoint being resumed was trained with the {resumed!r} "
                              f"feature network, and changing it would change the loss mid-run; pass --features "
                              f"{resumed} (or auto), or start another --run-name")
    net = feature_network(features, seed=seed + 1)
    settings["features"] = net.network_name
    settings["features_weights"] = net.weights_source
    cfg = PConvConfig(image_size=settings["image_size"], base_channels=settings["base_channels"],
                      loss_features=net.network_name)
    generator = PConvUNet(cfg, seed=seed)
    task = PConvTask(generator, vgg=net, lr=settings["lr"], finetune_lr=settings["finetune_lr"],
                     finetune_step=settings["finetune_step"])
    return Recipe(task, generator.model_name, cfg.to_dict())


def build_deepfill_v2(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 08's DeepFill v2 (Yu et al. 2019): gated-convolution generator + SN-PatchGAN at the profile's
    widths, ``DeepFillV2Task`` (pixel L1 + hinge GAN, 1:1; one discriminator and one generator update a step)
    at its lr on v2's free-form holes (:func:`~inpaint_utils.models.gated_conv.free_form_masks`)."""
    from ..models.gated_conv import DeepFillV2Config, DeepFillV2Generator, DeepFillV2Task, SNPatchGANDiscriminator

    cfg = DeepFillV2Config(image_size=settings["image_size"], cnum=settings["cnum"], disc_cnum=settings["disc_cnum"])
    generator = DeepFillV2Generator(cfg, seed=seed)
    discriminator = SNPatchGANDiscriminator(cfg, seed=seed + 1)
    return Recipe(DeepFillV2Task(generator, discriminator, lr=settings["lr"]), generator.model_name, cfg.to_dict())


#: The names ``inpaint train`` used before it took those of ``fill`` and ``evaluate``: still accepted by every
#: subcommand (and by :data:`METHODS` and :func:`method_settings`) for the name they stand for.
ALIASES: dict[str, str] = {"context_encoder": "ce", "partial_conv": "pconv"}


def canonical_method(name: str) -> str:
    """The one name of a method across ``inpaint train``, ``fill``, ``evaluate`` and ``benchmark``: ``name``
    itself, or the name its alias (:data:`ALIASES`, e.g. ``context_encoder`` -> ``ce``) stands for."""
    return ALIASES.get(name, name)


def aliases_help() -> str:
    """One phrase for ``--help``: which old names are still accepted for which."""
    return ", ".join(f"{old} for {new}" for old, new in ALIASES.items()) + " are accepted too"


def default_run_name(method: str, profile: str) -> str:
    """The run folder ``inpaint train METHOD`` writes without ``--run-name``: the model's long name and the
    profile (``context_encoder_smoke`` for ``ce``, as before the names were unified, so that a run started
    under the old name resumes under the new one and the other way round)."""
    long_names = {new: old for old, new in ALIASES.items()}
    name = canonical_method(method)
    return f"{long_names.get(name, name)}_{profile}"


class _Methods(dict):
    """:data:`METHODS`: a dict of the one set of names that also finds a method by its alias."""

    def __missing__(self, key: str) -> Method:
        if key in ALIASES:
            return self[ALIASES[key]]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (key in ALIASES and dict.__contains__(self, ALIASES[key]))


#: ``inpaint train METHOD``: name (the names of ``inpaint fill`` / ``evaluate``) -> :class:`Method`
METHODS: dict[str, Method] = _Methods({
    "ce": Method("02_context_encoder", build_context_encoder,
                              description="Context Encoder (Pathak et al. 2016), centre hole; notebook 02"),
    "glcic": Method("04_glcic", build_glcic,
                    description="GLCIC (Iizuka et al. 2017), random rectangular holes; notebook 04"),
    "deepfill": Method("05_contextual_attention", build_deepfill,
                       description="DeepFill v1 / contextual attention (Yu et al. 2018), hole mode; notebook 05"),
    "pconv": Method("08_irregular_holes", build_partial_conv, prefix="pconv_",
                           description="partial convolutions (Liu et al. 2018), free-form holes; notebook 08"),
    "deepfill_v2": Method("08_irregular_holes", build_deepfill_v2, prefix="v2_",
                          description="DeepFill v2 / gated convolutions (Yu et al. 2019), free-form holes; notebook 08"),
})


def method_settings(method: str, profile: str) -> dict[str, Any]:
    """The settings ``inpaint train METHOD --profile PROFILE`` starts from: its notebook's profile
    (:func:`inpaint_utils.config.settings`); where the method has a :attr:`Method.prefix`, its own keys with
    the prefix taken off (``pconv_lr`` -> ``lr``) beside the shared ones, and the other methods' keys of
    that notebook left out. ``method``: a name of :data:`METHODS` or its alias."""
    from .. import config

    own = METHODS[canonical_method(method)]
    table = config.settings(own.notebook, profile)
    if not own.prefix:
        return table
    prefixes = {m.prefix for m in METHODS.values() if m.notebook == own.notebook and m.prefix}
    out = {k: v for k, v in table.items() if not any(k.startswith(p) for p in prefixes)}
    out.update({k[len(own.prefix):]: v for k, v in table.items() if k.startswith(own.prefix)})
    return out
