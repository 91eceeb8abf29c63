"""Analytic figures of NDS networks, from the config alone (no torch).

They follow the networks of ``cells_torch`` and ``anynet_torch`` layer by layer; the
tests hold every figure equal to a measurement of the built network.

- ``params``: trainable parameters (conv weights, BN affine, the classifier).
- ``flops``: nasfilter's convention (``Costs``): multiply-accumulates of convolutions and
  linear layers plus the classifier's bias adds; BN, pooling, ReLU, additions not counted.
- ``relu_count``: N_A, elements entering a ReLU per sample, over every ReLU call.

The ``flops`` field of the NDS files follows another convention: for the three AnyNet
records we could check it is nasfilter's ``flops`` plus 5 per BatchNorm output element
(``Tally.bn``), for the one cell record it is not (see docs/spaces.md); the files'
figure is kept as ``bench_flops`` in the truth table, not recomputed here.

Output sizes: every stride-2 layer of these networks (3x3/5x5/7x7 convolutions with
"same" padding, 1x1 stride-2 convolutions, 3x3 max pooling with padding 1, the
factorized reduction) maps n to ceil(n / 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from nasfilter.datasets import DatasetShape
from nasfilter.spaces.nds.config import AnyNetConfig, CellConfig


def _half(n: int) -> int:
    return (n + 1) // 2


@dataclass
class Tally:
    """Running totals while walking a network."""

    params: int = 0
    macs: int = 0  # conv and linear multiply-accumulates
    bias: int = 0  # bias adds (the classifier's)
    relu: int = 0
    bn: int = 0  # BatchNorm output elements

    def conv(self, c_in: int, c_out: int, kh: int, kw: int, out_area: int, groups: int = 1) -> None:
        per_pos = kh * kw * (c_in // groups) * c_out
        self.params += per_pos
        self.macs += per_pos * out_area

    def batchnorm(self, c: int, area: int) -> None:
        self.params += 2 * c
        self.bn += c * area

    def linear(self, c_in: int, c_out: int) -> None:
        self.params += c_in * c_out + c_out
        self.macs += c_in * c_out
        self.bias += c_out

    @property
    def flops(self) -> int:
        return self.macs + self.bias


# -- cell networks ------------------------------------------------------------------------


def _factorized_reduce(t: Tally, c_in: int, c_out: int, hw_in: tuple[int, int]) -> None:
    """ReLU, two 1x1 stride-2 convs (c_out / 2 each, concatenated), BN."""
    h, w = _half(hw_in[0]), _half(hw_in[1])
    t.relu += c_in * hw_in[0] * hw_in[1]
    t.conv(c_in, c_out // 2, 1, 1, h * w)
    t.conv(c_in, c_out // 2, 1, 1, h * w)
    t.batchnorm(c_out, h * w)


def _relu_conv_bn(t: Tally, c_in: int, c_out: int, hw: tuple[int, int]) -> None:
    """ReLU, 1x1 conv, BN (the cell input preprocessing)."""
    area = hw[0] * hw[1]
    t.relu += c_in * area
    t.conv(c_in, c_out, 1, 1, area)
    t.batchnorm(c_out, area)


def _cell_op(t: Tally, op: str, c: int, stride: int, hw_in: tuple[int, int]) -> None:
    """One cell operation on c channels (c in = c out)."""
    a_in = hw_in[0] * hw_in[1]
    h_out = _half(hw_in[0]) if stride == 2 else hw_in[0]
    w_out = _half(hw_in[1]) if stride == 2 else hw_in[1]
    a_out = h_out * w_out
    if op == "none" or op.startswith(("avg_pool", "max_pool")):
        return
    if op == "skip_connect":
        if stride == 2:
            _factorized_reduce(t, c, c, hw_in)
        return
    t.relu += c * a_in
    if op in ("conv_1x1", "conv_3x3"):
        k = 1 if op == "conv_1x1" else 3
        t.conv(c, c, k, k, a_out)
        t.batchnorm(c, a_out)
    elif op in ("conv_3x1_1x3", "conv_7x1_1x7"):
        k = 3 if op == "conv_3x1_1x3" else 7
        t.conv(c, c, 1, k, hw_in[0] * w_out)  # (1, k) conv, stride (1, s)
        t.conv(c, c, k, 1, a_out)  # (k, 1) conv, stride (s, 1)
        t.batchnorm(c, a_out)
    elif op in ("sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "dil_sep_conv_3x3"):
        k = int(op[-1])
        for _ in range(2):  # (ReLU,) depthwise k x k, pointwise 1x1, BN; twice
            t.conv(c, c, k, k, a_out, groups=c)
            t.conv(c, c, 1, 1, a_out)
            t.batchnorm(c, a_out)
        t.relu += c * a_out  # the second ReLU
    elif op in ("dil_conv_3x3", "dil_conv_5x5"):
        k = int(op[-1])
        t.conv(c, c, k, k, a_out, groups=c)
        t.conv(c, c, 1, 1, a_out)
        t.batchnorm(c, a_out)
    else:  # pragma: no cover - configs are validated against the op lists
        raise ValueError(f"unknown operation {op!r}")


def cell_tally(cfg: CellConfig, shape: DatasetShape, imagenet: bool) -> Tally:
    """Walk pycls's NetworkCIFAR (``imagenet=False``) or NetworkImageNet."""
    t = Tally()
    c = cfg.width
    h, w = shape.hw
    if imagenet:
        h1, w1 = _half(h), _half(w)
        t.conv(shape.channels, c // 2, 3, 3, h1 * w1)
        t.batchnorm(c // 2, h1 * w1)
        t.relu += (c // 2) * h1 * w1
        h2, w2 = _half(h1), _half(w1)
        t.conv(c // 2, c, 3, 3, h2 * w2)
        t.batchnorm(c, h2 * w2)
        t.relu += c * h2 * w2  # stem1 opens with a ReLU
        h3, w3 = _half(h2), _half(w2)
        t.conv(c, c, 3, 3, h3 * w3)
        t.batchnorm(c, h3 * w3)
        c_pp, c_p, c_curr = c, c, c
        hw0, hw1 = (h2, w2), (h3, w3)
        reduction_prev = True
    else:
        c_stem = 3 * c
        t.conv(shape.channels, c_stem, 3, 3, h * w)
        t.batchnorm(c_stem, h * w)
        c_pp, c_p, c_curr = c_stem, c_stem, c
        hw0 = hw1 = (h, w)
        reduction_prev = False
    layers = cfg.depth
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            c_curr *= 2
        if reduction_prev:
            _factorized_reduce(t, c_pp, c_curr, hw0)
        else:
            _relu_conv_bn(t, c_pp, c_curr, hw0)
        _relu_conv_bn(t, c_p, c_curr, hw1)
        pairs, concat = (
            (cfg.reduce, cfg.reduce_concat) if reduction else (cfg.normal, cfg.normal_concat)
        )
        hw_node = (_half(hw1[0]), _half(hw1[1])) if reduction else hw1
        for op, src in pairs:
            stride = 2 if reduction and src < 2 else 1
            _cell_op(t, op, c_curr, stride, hw1 if src < 2 else hw_node)
        reduction_prev = reduction
        c_pp, c_p = c_p, len(concat) * c_curr
        hw0, hw1 = hw1, hw_node
    t.linear(c_p, shape.num_classes)
    return t


# -- AnyNet -------------------------------------------------------------------------------


def anynet_tally(cfg: AnyNetConfig, shape: DatasetShape) -> Tally:
    """Walk the AnyNet of NDS: stem (entry 0: 3x3 conv, BN, ReLU), stages, head."""
    t = Tally()
    h, w = shape.hw
    w0 = cfg.stem_width
    t.conv(shape.channels, w0, 3, 3, h * w)
    t.batchnorm(w0, h * w)
    t.relu += w0 * h * w
    w_prev = w0
    for d, w_out, stride, bm, g in cfg.stages():
        for b in range(d):
            s = stride if b == 0 else 1
            w_in = w_prev if b == 0 else w_out
            a_in = h * w
            if s == 2:
                h, w = _half(h), _half(w)
            a_out = h * w
            if cfg.block_type == "res_bottleneck_block":
                assert bm is not None and g is not None
                wb = int(round(w_out * bm))
                t.conv(w_in, wb, 1, 1, a_in)
                t.batchnorm(wb, a_in)
                t.relu += wb * a_in
                t.conv(wb, wb, 3, 3, a_out, groups=g)
                t.batchnorm(wb, a_out)
                t.relu += wb * a_out
                t.conv(wb, w_out, 1, 1, a_out)
                t.batchnorm(w_out, a_out)
            else:
                t.conv(w_in, w_out, 3, 3, a_out)
                t.batchnorm(w_out, a_out)
                t.relu += w_out * a_out
                t.conv(w_out, w_out, 3, 3, a_out)
                t.batchnorm(w_out, a_out)
            if cfg.block_type == "double_plain_block":
                t.relu += w_out * a_out  # the second ReLU of [conv, BN, ReLU] x 2
            else:
                if w_in != w_out or s != 1:  # projection shortcut: 1x1 conv, BN
                    t.conv(w_in, w_out, 1, 1, a_out)
                    t.batchnorm(w_out, a_out)
                t.relu += w_out * a_out  # ReLU after the addition
        w_prev = w_out
    t.linear(w_prev, shape.num_classes)
    return t
