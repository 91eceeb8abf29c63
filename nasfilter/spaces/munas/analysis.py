"""Shapes and analytic figures of a µNAS network, without building it.

One pass over the architecture follows the network that ``network_torch.build`` makes
(µNAS's ``CnnArchitecture._assemble_a_network``: valid convolutions whose kernel is
clipped to the feature map, 2 x 2 pre-pooling only on maps larger than 1 x 1, branch
outputs brought to the smallest map by max pooling and zero-padded to the largest
before they are added) and counts, per input sample:

- ``params``: trainable parameters (weights, biases, BatchNorm affine);
- ``flops``: convolution and dense multiply-accumulates plus bias adds (NATS-Bench's
  counter; pooling, BN, ReLU and additions not counted);
- ``macs``: µNAS's MAC count (``resource_models.models.macs``): convolution and dense
  multiply-accumulates (no bias), plus pooled window elements, plus (terms - 1) x output
  elements of every addition;
- ``relu_count``: elements entering a ReLU;
- the tensors of the deployed graph for the peak-memory model (``memory.py``): BatchNorm
  and ReLU are fused into their convolution, activations are int8 (1 byte per element),
  the network input is not counted (µNAS's ``exclude_inputs``).

tests/test_munas.py holds these equal to measurements of the built network.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasfilter.spaces.munas.genome import Arch, Layer, main_channels
from nasfilter.spaces.munas.memory import Group, peak_memory


@dataclass(frozen=True)
class Figures:
    params: int
    flops: int
    macs: int
    relu_count: int
    peak_ram_bytes: int
    groups: tuple[Group, ...]  # the graph the memory model reads, in execution order


class _Counter:
    __slots__ = ("params", "flops", "macs", "relu")

    def __init__(self) -> None:
        self.params = self.flops = self.macs = self.relu = 0


def _conv(
    x: tuple[int, int, int], layer: Layer, out_ch: int, n: _Counter, residents: list[int]
) -> tuple[int, int, int]:
    """One convolution layer (with its optional pre-pooling) on an (h, w, c) map; appends
    the sizes of the tensors it produces to ``residents``."""
    h, w, c = x
    if layer.pool and (h > 1 or w > 1):
        ph, pw = min(2, h), min(2, w)
        h, w = h // ph, w // pw
        n.macs += h * w * c * ph * pw
        residents.append(h * w * c)
    k = min(layer.k, h, w)
    s = layer.stride
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    area = oh * ow
    if layer.kind == "c":
        n.params += k * k * c * out_ch + out_ch
        n.macs += area * out_ch * k * k * c
        n.flops += area * out_ch * (k * k * c + 1)
    else:
        out_ch = c
        n.params += k * k * c + c
        n.macs += area * c * k * k
        n.flops += area * c * (k * k + 1)
    if layer.bn:
        n.params += 2 * out_ch
    if layer.relu:
        n.relu += area * out_ch
    residents.append(area * out_ch)
    return oh, ow, out_ch


def _tie_up(
    outs: list[tuple[int, int, int]], chains: list[list[int]], n: _Counter
) -> tuple[tuple[int, int, int], int]:
    """Bring several outputs to one map (µNAS's ``tie_up_pending_outputs``): max-pool each
    by round(size / smallest size), zero-pad to the largest, add. Returns the sum's shape
    and the cost in bytes of the addition (its inputs, plus its output unless one input
    has the output's shape and is overwritten in place)."""
    sh = min(o[0] for o in outs)
    sw = min(o[1] for o in outs)
    pooled = []
    for o, chain in zip(outs, chains, strict=True):
        h, w, c = o
        dh, dw = int(round(h / sh)), int(round(w / sw))
        if dh > 1 or dw > 1:
            ph, pw = min(dh, h), min(dw, w)
            h, w = h // ph, w // pw
            n.macs += h * w * c * ph * pw
            chain.append(h * w * c)
        pooled.append((h, w, c))
    mh = max(o[0] for o in pooled)
    mw = max(o[1] for o in pooled)
    c = pooled[0][2]
    out = mh * mw * c
    n.macs += (len(pooled) - 1) * out
    cost = sum(o[0] * o[1] * o[2] for o in pooled)
    if not any(o[0] == mh and o[1] == mw for o in pooled):
        cost += out
    return (mh, mw, c), cost


def analyse(arch: Arch, height: int, width: int, channels: int, classes: int) -> Figures:
    """Every analytic figure of ``arch`` at an input of (height, width, channels)."""
    n = _Counter()
    groups: list[Group] = []
    x = (height, width, channels)
    j_size = 0  # the network input is not counted
    outs: list[tuple[int, int, int]] = []
    chains: list[list[int]] = []
    li = x
    prev_peak = 0  # single-tensor steps after the last group (pool, dense)

    def close() -> tuple[int, int, int]:
        nonlocal outs, chains
        if len(outs) == 1:
            groups.append(Group(j_size, tuple(tuple(ch) for ch in chains), 0))
            return outs[0]
        y, cost = _tie_up(outs, chains, n)
        groups.append(Group(j_size, tuple(tuple(ch) for ch in chains), cost))
        return y

    for b, block in enumerate(arch.blocks):
        if block.parallel:
            target = main_channels(arch.blocks, b, channels) or channels
            y = li
            chain: list[int] = []
            last = len(block.layers) - 1
            for j, layer in enumerate(block.layers):
                out_ch = target if (j == last and layer.kind == "c") else (layer.ch or 0)
                y = _conv(y, layer, out_ch, n, chain)
            if block.layers[-1].kind == "d":
                # µNAS follows a depthwise last layer with a 1x1 convolution (no BN, no
                # ReLU) to the main path's channels
                h, w, c = y
                n.params += c * target + target
                n.macs += h * w * target * c
                n.flops += h * w * target * (c + 1)
                chain.append(h * w * target)
                y = (h, w, target)
            outs.append(y)
            chains.append(chain)
        else:
            if outs:
                x = close()
                j_size = x[0] * x[1] * x[2]
            li = x
            chain = []
            for layer in block.layers:
                assert layer.ch is not None or layer.kind == "d"
                x = _conv(x, layer, layer.ch or 0, n, chain)
            outs = [x]
            chains = [chain]
    x = close()
    h, w, c = x
    size = h * w * c
    if arch.pool is not None:
        p = arch.pool[1]
        ph, pw = min(p, h), min(p, w)
        h, w = h // ph, w // pw
        n.macs += h * w * c * ph * pw
        prev_peak = max(prev_peak, size + h * w * c)
        size = h * w * c
    for u in (*arch.dense, classes):
        n.params += size * u + u
        n.macs += size * u
        n.flops += size * u + u
        prev_peak = max(prev_peak, size + u)
        size = u
    n.relu += sum(arch.dense)
    peak = max(prev_peak, peak_memory(groups))
    return Figures(n.params, n.flops, n.macs, n.relu, peak, tuple(groups))
