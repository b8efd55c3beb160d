"""The registry of the source reports' datasets: Kaggle ids, archive checksums, preprocessing (part of :mod:`inpaint_utils.data`)."""
from __future__ import annotations

from dataclasses import dataclass


from .. import config

#: the file written last into ``data/<name>/`` once a download is complete
MARKER = ".complete"
#: the file in :func:`config.data_root` naming the course's dataset: written by a successful
#: :func:`~inpaint_utils.data.download` into the default folder, read by :func:`~inpaint_utils.data.course_dataset`
COURSE_FILE = "course_dataset.json"
#: the environment variable that names the course's dataset (before :data:`COURSE_FILE`)
COURSE_ENV = "INPAINT_DATASET"
#: what notebook 00 downloads when the network allows it
DEFAULT_COURSE_DATASET = "celeba-hq"


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the source reports and where to get it.

    ``image_glob`` is the pattern (relative to ``data/<name>/``) that matches the images after
    extraction; files are then filtered by suffix (case-insensitive). ``preprocessing`` names a mode
    of :func:`preprocess`. ``sha256`` is the archive's checksum where we know it; ``None`` means the
    archive is only checked for integrity (``zipfile.testzip``: every member's CRC). ``crop`` is a
    region taken from each file before preprocessing (``"left_half"`` for the photo half of the
    Cityscapes image pairs). ``size``, ``num_files``: what the dataset page states (``None``: not recorded);
    ``stated``: how far those facts, the id and the licence were checked. kagglehub extracts the dataset
    itself and keeps no archive: what is checked then is the tree (:func:`~inpaint_utils.data.download`),
    and the sha256 of its file listing is computed at the first download, stored in ``data/<name>/.complete``
    and checked against by :func:`~inpaint_utils.data.verify_download`.
    """

    name: str
    kaggle_id: str
    paper: str
    description: str
    image_glob: str
    preprocessing: str
    sha256: str | None
    licence: str
    crop: str | None = None
    fallback_collection: str = "scenes"
    size: str | None = None
    num_files: int | None = None
    stated: str = "as stated on the dataset page, not verified here"

    @property
    def url(self) -> str:
        return f"https://www.kaggle.com/datasets/{self.kaggle_id}"


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="celeba-hq",
            kaggle_id="badasstechie/celebahq-resized-256x256",
            paper="Nanavati & Patel (Context Encoder vs Stable Diffusion 2)",
            description=(
                "CelebA-HQ, 30,000 aligned celebrity faces, here already resized from 1024x1024 to "
                "256x256 jpg in celeba_hq_256/ (about 0.3 GB). The paper resized to 256 and cropped to "
                "128; the 256 px copy makes that cheap (our choice of Kaggle copy)."
            ),
            image_glob="celeba_hq_256/*",
            preprocessing="ce",
            # No archive checksum is known: the Kaggle page could not be reached from where this was written.
            # kagglehub keeps no archive; the sha256 of the extracted tree's listing is computed at the first
            # download and stored in data/celeba-hq/.complete (data.verify_download checks against it).
            sha256=None,
            licence="CelebA agreement: non-commercial research and education only; do not redistribute.",
            fallback_collection="faces",
            size="about 300 MB",
            num_files=30000,
            stated="id, size (about 300 MB), 30,000 JPEGs at 256x256 and licence as stated on the dataset page, "
                   "not verified here (no network where this was written)",
        ),
        DatasetSpec(
            name="cityscapes",
            kaggle_id="dansbecker/cityscapes-image-pairs",
            paper="Nanavati & Patel (Context Encoder vs Stable Diffusion 2)",
            description=(
                "Cityscapes street scenes as 256x512 jpg pairs (photo left, colour label map right), "
                "2,975 train + 500 val in cityscapes_data/{train,val}/ (about 0.1 GB). The official "
                "release needs a registration; this Kaggle copy is our choice. Only the left (photo) "
                "half is used."
            ),
            image_glob="cityscapes_data/*/*",
            preprocessing="ce",
            sha256=None,
            licence="Cityscapes terms: non-commercial research and teaching; cite Cordts et al. 2016.",
            crop="left_half",
        ),
        DatasetSpec(
            name="places365",
            kaggle_id="benjaminkz/places365",
            paper="Nanavati & Patel (Context Encoder vs Stable Diffusion 2)",
            description=(
                "Places365-Standard, 256x256 scene images in train/ and val/ class folders (large: "
                "tens of GB; use max_images). The paper used 'a filtered subset' it does not list; "
                "this Kaggle copy and any subsetting are our choice."
            ),
            image_glob="**/*",
            preprocessing="ce",
            sha256=None,
            licence="Places terms (MIT CSAIL): non-commercial research and education; images belong to their owners.",
        ),
        DatasetSpec(
            name="animals-90",
            kaggle_id="iamsouravbanerjee/animal-image-dataset-90-different-animals",
            paper="Biradar et al. (GLCIC and contextual attention)",
            description=(
                "Animal Image Dataset (90 Different Animals): 5,400 jpg of 90 classes (60 each) in "
                "animals/animals/<class>/ (about 0.7 GB), the exact Kaggle set the paper cites; it split "
                "1:11 (test:train) per class and resized to 256x256."
            ),
            image_glob="animals/animals/*/*",
            preprocessing="256",
            sha256=None,
            licence="As stated on the Kaggle page; web images of mixed origin: research and teaching use only.",
        ),
        DatasetSpec(
            name="imagenet-subset",
            kaggle_id="ifigotin/imagenetmini-1000",
            paper="Biradar et al. (GLCIC and contextual attention)",
            description=(
                "ImageNet Mini: about 38,700 ImageNet-1k images (all 1000 classes) in "
                "imagenet-mini/{train,val}/<wnid>/ (about 4 GB). The paper used a 50k subset of the "
                "ImageNet localization challenge (a Kaggle competition that needs accepting its rules "
                "and 150+ GB); this smaller public subset is our choice."
            ),
            image_glob="imagenet-mini/*/*/*",
            preprocessing="256",
            sha256=None,
            licence="ImageNet terms of access: non-commercial research and education only.",
        ),
    )
}


def get_dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}") from None


def registry_rows() -> list[dict[str, str]]:
    """One row per registered dataset (for tables): name, paper, kaggle id, preprocessing,
    whether it is downloaded under :func:`config.data_root`, and the download command."""
    root = config.data_root()
    return [
        {
            "name": spec.name,
            "paper": spec.paper.split(" (")[0],
            "kaggle id": spec.kaggle_id,
            "preprocess": spec.preprocessing,
            "downloaded": "yes" if (root / spec.name / MARKER).is_file() else "no",
            "download with": f"bash data_download.sh {spec.name}",
        }
        for spec in DATASETS.values()
    ]
