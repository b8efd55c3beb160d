"""Notebook 04's graded exercise (GLCIC, Iizuka et al. 2017): :func:`check_local_crop`, the local
discriminator's patch around each hole, against :func:`inpaint_utils.models.glcic.local_patch_corners` and
:func:`inpaint_utils.models.glcic.crop_local`.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from .runner import CheckResult, _call, _Fail, _reference, _run, _unchanged

__all__ = ["check_local_crop"]


def _crop_at(images: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor | None:
    """The reference crop at ``corners``; ``None`` where a patch would leave the image (not a diagnosis)."""
    h, w = images.shape[-2:]
    if bool((corners < 0).any()) or bool((corners[:, 0] + size > h).any()) or bool((corners[:, 1] + size > w).any()):
        return None
    return _reference("models.glcic", "crop_local")(images, corners, size)


def _crop_mistakes(images: torch.Tensor, boxes: torch.Tensor, size: int) -> dict[str, torch.Tensor | None]:
    """The patches of the usual wrong placements (``None`` when a placement cannot be cropped)."""
    s = images.shape[-1]
    corners = _reference("models.glcic", "local_patch_corners")(boxes, s, size)
    starts = boxes[:, :2].long()
    out: dict[str, torch.Tensor | None] = {
        "the patch whose top-left corner is the hole's top-left corner: centre the patch on the hole, corner = "
        "top + height // 2 - local_size // 2 (and the same for left / width)":
            _crop_at(images, starts.clamp(0, s - size), size),
        "rows and columns swapped: boxes hold (top, left, height, width), so the patch's top comes from "
        "boxes[:, 0] and boxes[:, 2], its left from boxes[:, 1] and boxes[:, 3]":
            _crop_at(images, _swapped_corners(boxes, s, size), size),
        "sample 0's patch position for every image: each image has its own hole":
            _crop_at(images, corners[:1].expand_as(corners), size),
    }
    return out


def _one_pixel_off(patch: torch.Tensor, image: torch.Tensor, corner: torch.Tensor, size: int) -> bool:
    """Whether ``patch`` is the ``size`` crop of ``image`` at ``corner`` moved by one pixel (rows and / or columns)."""
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            top, left = int(corner[0]) + dy, int(corner[1]) + dx
            if (dy or dx) and 0 <= top <= image.shape[-2] - size and 0 <= left <= image.shape[-1] - size \
                    and torch.equal(patch, image[:, top:top + size, left:left + size]):
                return True
    return False


def _swapped_corners(boxes: torch.Tensor, image_size: int, size: int) -> torch.Tensor:
    """The centred, clamped corners with rows and columns swapped (a diagnosis of :func:`check_local_crop`)."""
    swapped = boxes[:, [1, 0, 3, 2]]
    return _reference("models.glcic", "local_patch_corners")(swapped, image_size, size)


def check_local_crop(fn: Callable[..., Any], *, strict: bool = False) -> CheckResult:
    """Grade ``local_crop(images, boxes, local_size) -> patches``, the input of GLCIC's local discriminator
    (Iizuka et al. 2017, section 3.2: "a 128x128 patch centered around the completed region"): ``images``
    ``(B, C, S, S)``, ``boxes`` ``(B, 4)`` long ``top, left, height, width`` of each image's hole
    (:class:`inpaint_utils.models.glcic.Holes`), ``patches`` ``(B, C, local_size, local_size)``: per image the
    square centred on its hole (corner ``top + height // 2 - local_size // 2``, the same for columns), clamped
    inside the image. The reference is ``crop_local(images, local_patch_corners(boxes, S, local_size), local_size)``
    of :mod:`inpaint_utils.models.glcic`.

    Tests: the shape; holes in the middle of the image (no clamping); holes at the border and in the corners
    (clamped); odd hole sides (the integer centre); a different hole per image; every patch holds its whole hole;
    gradients reach the images (the discriminator's loss trains the generator through this crop); inputs left
    unchanged. A wrong patch is matched against the usual mistakes (the hole's corner instead of its centre, rows
    and columns swapped, off by one, one position for the whole batch).
    """
    gen = torch.Generator().manual_seed(2017)
    s, size = 64, 32

    def images_(b: int = 4) -> torch.Tensor:
        return torch.rand(b, 3, s, s, generator=gen)

    def run(images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        out = _call(fn, images, boxes, size)
        if not isinstance(out, torch.Tensor):
            raise _Fail(f"expected a torch.Tensor of patches, got {type(out).__name__}")
        want = (images.shape[0], images.shape[1], size, size)
        if tuple(out.shape) != want:
            hint = ""
            if out.ndim == 4 and (out.shape[-2] < size or out.shape[-1] < size):
                hint = (" A patch that runs over the image's edge is cut short by slicing: move it inside, clamp the "
                        "corner into [0, image_size - local_size]")
            raise _Fail(f"expected patches of shape {want} (B, C, local_size, local_size), got {tuple(out.shape)}."
                        + hint)
        return out

    def compare(what: str, images: torch.Tensor, boxes: torch.Tensor) -> None:
        corners = _reference("models.glcic", "local_patch_corners")(boxes, s, size)
        expected = _reference("models.glcic", "crop_local")(images, corners, size)
        got = run(images, boxes).detach()
        if torch.equal(got, expected):
            return
        wrong = [i for i in range(len(got)) if not torch.equal(got[i], expected[i])]
        hint = ""
        for why, patches in _crop_mistakes(images, boxes, size).items():
            if patches is not None and torch.equal(got[wrong], patches[wrong]):
                hint = f" Your patches match {why}."
                break
        if not hint and all(_one_pixel_off(got[i], images[i], corners[i], size) for i in wrong):
            hint = (" Each wrong patch is the right one moved by one pixel (off by one): the hole's centre is "
                    "top + height // 2 (integer division), the corner that centre minus local_size // 2")
        i = wrong[0]
        top, left, h, w = boxes[i].tolist()
        raise _Fail(f"{what}: {len(wrong)} of {len(got)} patches differ from the reference; e.g. image {i}, hole at "
                    f"(top {top}, left {left}, {h}x{w}): the patch's corner should be "
                    f"{tuple(corners[i].tolist())}.{hint}")

    def boxes_of(rows: list[tuple[int, int, int, int]]) -> torch.Tensor:
        return torch.tensor(rows, dtype=torch.long)

    def t_shape():
        run(images_(), boxes_of([(20, 20, 16, 16)] * 4))

    def t_middle():
        compare("holes in the middle of the image (even sides)",
                images_(), boxes_of([(20, 20, 16, 16), (16, 24, 20, 12), (24, 18, 12, 20), (22, 22, 20, 20)]))

    def t_border():
        compare("holes at the border and in the corners (the centred patch must be moved inside the image)",
                images_(), boxes_of([(0, 0, 20, 20), (50, 50, 14, 14), (0, 40, 16, 24), (44, 2, 20, 18)]))

    def t_odd():
        compare("holes with odd sides (the centre is top + height // 2)",
                images_(), boxes_of([(17, 21, 15, 19), (19, 13, 21, 17), (9, 30, 13, 11), (30, 9, 25, 23)]))

    def t_random():
        holes = _reference("models.glcic", "random_holes")(6, s, (12, 28), size, generator=gen)
        compare("random holes as GLCIC's training draws them", images_(6), holes.boxes)

    def t_contains_hole():
        holes = _reference("models.glcic", "random_holes")(8, s, (20, 32), size, generator=gen)
        images = holes.mask.expand(-1, 3, -1, -1).contiguous()                        # the image IS the hole mask
        patches = run(images, holes.boxes).detach()
        area = holes.mask.sum(dim=(1, 2, 3))
        inside = patches[:, :1].sum(dim=(1, 2, 3))
        if not torch.equal(inside, area):
            i = int((inside != area).nonzero()[0, 0])
            raise _Fail(f"image {i}'s patch holds {int(inside[i])} of its {int(area[i])} hole pixels: the local "
                        f"discriminator must see the whole completed region")

    def t_gradient():
        images = images_().requires_grad_(True)
        boxes = boxes_of([(20, 20, 16, 16), (0, 0, 20, 20), (44, 2, 20, 18), (17, 21, 15, 19)])
        copies = images.detach().clone(), boxes.clone()
        out = run(images, boxes)
        _unchanged("images", copies[0], images.detach())
        _unchanged("boxes", copies[1], boxes)
        if not out.requires_grad:
            raise _Fail("no gradient reaches the images: crop with indexing or slicing on the tensor (no .detach(), "
                        "numpy or .item() on the pixels), so that the generator trains through the local "
                        "discriminator")
        out.sum().backward()
        if images.grad is None or int(images.grad.sum()) != 4 * 3 * size * size:
            raise _Fail("the gradient must be 1 on each patch's pixels and 0 elsewhere (each pixel copied once)")

    return _run("local_crop", fn, [
        ("returns (B, C, local_size, local_size) patches", t_shape),
        ("holes in the middle: the patch is centred on the hole", t_middle),
        ("holes at the border: the patch is moved inside the image", t_border),
        ("odd hole sides: the integer centre", t_odd),
        ("random training holes, one per image", t_random),
        ("every patch holds its whole hole", t_contains_hole),
        ("gradients reach the images, inputs unchanged", t_gradient),
    ], strict)
