"""Input batches for data-dependent metrics (NASWOT), without torchvision.

numpy only: the images come back as a float32 array and the caller makes the tensor
(``torch.from_numpy(info.images)``). Nothing here imports torch.

    info = load_batch("cifar10", batch_size=64, seed=0)
    record = describe(info)
"""

from nasfilter.data.api import (
    DATASET_CHOICES,
    ENV_VAR,
    default_data_dir,
    describe,
    indices_sha256,
    load_batch,
    synthetic_batch,
)
from nasfilter.data.common import BatchInfo
from nasfilter.data.download import fetch, md5_of

__all__ = [
    "DATASET_CHOICES",
    "ENV_VAR",
    "BatchInfo",
    "default_data_dir",
    "describe",
    "fetch",
    "indices_sha256",
    "load_batch",
    "md5_of",
    "synthetic_batch",
]
