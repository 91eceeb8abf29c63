"""NDS design spaces (Radosavovic et al., ICCV 2019): DARTS, ENAS, NASNet, Amoeba, PNAS
(cell networks, CIFAR-10 and ImageNet) and Vanilla, ResNet, ResNeXt-A, ResNeXt-B
(AnyNet, CIFAR-10).

Importing this package registers the spaces (the ``imagenet`` shape, 224 x 224 RGB with
1000 classes, and the ``imagenet`` ground-truth dataset are in ``nasfilter.datasets``).
Nothing here imports torch: the networks live in ``cells_torch`` and ``anynet_torch``.
See docs/spaces.md.
"""

from __future__ import annotations

from nasfilter.datasets import get_shape

IMAGENET_SHAPE = get_shape("imagenet")

from nasfilter.spaces.nds import spaces  # noqa: E402,F401  (registers the spaces)
from nasfilter.spaces.nds.spaces import NdsAnyNetSpace, NdsCellSpace, NdsSpace  # noqa: E402

__all__ = ["IMAGENET_SHAPE", "NdsAnyNetSpace", "NdsCellSpace", "NdsSpace"]
