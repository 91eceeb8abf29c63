"""The one dataset vocabulary: network input shapes, input data, ground-truth datasets.

Three different things share dataset names, and this module keeps them apart:

- a **shape** (:class:`DatasetShape`): what a dataset means for a network: classes,
  channels and input resolution. Networks are built and analytic costs computed at a
  shape (``--data`` picks it, ``--shape`` for synthetic inputs);
- **input data** (``INPUT_DATA``): where the images of data-dependent metrics come from:
  a real dataset read by ``nasfilter.data``, or ``synthetic`` (seeded Gaussian images of
  any shape);
- a **ground-truth dataset** (``TRUTH_DATASETS``): the name under which benchmarks
  record trained accuracy (NATS-Bench spells ``cifar10-valid``, ``ImageNet16-120``), with
  the shape its networks were trained at.

Spaces that bring their own shapes or truth datasets (a microcontroller space with MNIST
inputs, NDS with ImageNet) add them with :func:`register_shape` and
:func:`register_truth_dataset`. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasfilter.errors import UsageError


@dataclass(frozen=True)
class DatasetShape:
    """What a dataset means for a network: classes and input size.

    ``resolution`` is the input height; ``width`` the input width when it differs
    (``None``: square).
    """

    name: str
    num_classes: int
    resolution: int
    channels: int = 3
    width: int | None = None

    @property
    def height(self) -> int:
        return self.resolution

    @property
    def hw(self) -> tuple[int, int]:
        """(height, width) of one input."""
        return self.resolution, self.width if self.width is not None else self.resolution

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """(batch, channels, height, width)."""
        h, w = self.hw
        return batch, self.channels, h, w

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "name": self.name,
            "num_classes": self.num_classes,
            "resolution": self.resolution,
        }
        if self.channels != 3:
            d["channels"] = self.channels
        if self.width is not None:
            d["width"] = self.width
        return d


#: Shapes by name (lower case). The first three are NATS-Bench's datasets.
SHAPES: dict[str, DatasetShape] = {}


def register_shape(shape: DatasetShape) -> DatasetShape:
    """Add a shape preset; a second shape of the same name must be identical."""
    old = SHAPES.get(shape.name)
    if old is not None and old != shape:
        raise ValueError(f"dataset shape {shape.name!r} is already registered as {old}")
    SHAPES[shape.name] = shape
    return shape


for _s in (
    DatasetShape("cifar10", 10, 32),
    DatasetShape("cifar100", 100, 32),
    DatasetShape("imagenet16-120", 120, 16),
    DatasetShape("imagenet", 1000, 224),  # NDS's ImageNet networks
    # µNAS's experiments (eliberis/uNAS dataset/): MNIST; Speech Commands as 49 MFCC frames
    # x 40 coefficients, 10 words plus silence and unknown; Chars74K EnglishImg at 48 x 48
    DatasetShape("mnist", 10, 28, channels=1),
    DatasetShape("speech-commands", 12, 49, channels=1, width=40),
    DatasetShape("chars74k", 62, 48),
):
    register_shape(_s)

DEFAULT_SHAPE = "cifar10"


def get_shape(name: str) -> DatasetShape:
    """A shape preset by name (any case); UsageError naming the choices otherwise."""
    key = str(name).strip().lower()
    try:
        return SHAPES[key]
    except KeyError:
        raise UsageError(
            f"Unknown dataset shape {name!r}.", f"Choose one of: {', '.join(SHAPES)}."
        ) from None


#: Input data for data-dependent metrics: name -> the shape its images have.
#: ``synthetic`` has no shape of its own: it takes the run's ``--shape``.
INPUT_DATA: dict[str, str | None] = {
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "imagenet16-120": "imagenet16-120",
    "synthetic": None,
}
SYNTHETIC = "synthetic"


def check_input_data(name: str) -> str:
    key = str(name).strip().lower()
    if key not in INPUT_DATA:
        raise UsageError(f"Unknown --data {name!r}.", f"Choose one of: {', '.join(INPUT_DATA)}.")
    return key


#: Ground-truth dataset names as the benchmarks spell them -> the shape of their networks.
TRUTH_DATASETS: dict[str, str] = {
    "cifar10-valid": "cifar10",
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "ImageNet16-120": "imagenet16-120",
    "imagenet": "imagenet",  # NDS's ImageNet files
}
TRUTH_SPLITS: tuple[str, ...] = ("valid", "test")


def register_truth_dataset(name: str, shape: str) -> None:
    """Add a ground-truth dataset name (spelled as its benchmark spells it)."""
    old = TRUTH_DATASETS.get(name)
    if old is not None and old != shape:
        raise ValueError(f"truth dataset {name!r} is already registered with shape {old!r}")
    TRUTH_DATASETS[name] = shape


def canonical_truth_dataset(name: str) -> str:
    """The benchmark's spelling of a ground-truth dataset name given in any case."""
    key = str(name).strip().lower()
    for d in TRUTH_DATASETS:
        if d.lower() == key:
            return d
    raise UsageError(
        f"Unknown dataset {name!r}.", f"Choose one of: {', '.join(TRUTH_DATASETS)} (any case)."
    )


def canonical_split(name: str) -> str:
    key = str(name).strip().lower()
    if key not in TRUTH_SPLITS:
        raise UsageError(f"Unknown split {name!r}.", "Choose 'valid' or 'test'.")
    return key


def truth_shape(dataset: str) -> DatasetShape:
    """The shape of the networks whose accuracy a ground-truth dataset records."""
    return get_shape(TRUTH_DATASETS[canonical_truth_dataset(dataset)])
