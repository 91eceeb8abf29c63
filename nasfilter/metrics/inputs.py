"""What a model-path metric gets for one architecture: ``MetricInput``.

The scorer builds each network once, seeded, and keeps it pristine. A metric declared
with ``path='model'`` is called with a ``MetricInput`` whose ``model`` is

- a fresh copy of the pristine network (``copy.deepcopy``: the same seeded weights,
  no rebuild) when the metric declares ``fresh_network`` or ``float64`` (then in
  float64); the metric may change it freely. When the scorer lets it (``lend=True``,
  as the engine does), a ``fresh_network`` metric gets the pristine network itself,
  lent: its weights, buffers, ``requires_grad`` flags and modes are recorded first, and
  put back in place before anything else reads the pristine network (the next metric,
  the shared pass, ``fresh()``). That is the same network for the metric and saves a
  deep copy per architecture (a NATS-Bench cell: ~55 ms on a 2-core CPU). A metric that
  changes its structure or leaves hooks on it is fine too: the network is then built
  again from its seed (``rebuild``), once;
- otherwise the pristine network itself, which the metric must leave exactly as it
  found it (weights, buffers, ``.grad``, train/eval mode). Anything that runs a forward
  pass in training mode (BatchNorm running statistics change) or a backward pass
  (``.grad`` is set) must declare ``fresh_network``.

``inputs``/``targets`` are the run's batch and labels, present only when the metric
declares ``data``/``labels``; data-free metrics make their own inputs with
``gaussian()`` or ``ones()`` (seeded per architecture), so their values never depend on
``--data``. ``shared(key, fn)`` memoizes a computation across the metrics of one
architecture (a gradient pass that several metrics read), and ``probe`` is the shared
no-grad forward pass. ``logits(model, x)`` runs a network and returns its logits
(NATS/xautodl networks return ``(features, logits)``).

``compute(name, model, inputs, targets)`` scores any ``nn.Module`` with any registered
metric through the same code, leaving the caller's model unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import nn

from nasfilter.datasets import DatasetShape
from nasfilter.errors import UsageError
from nasfilter.metrics.registry import Metric, Score, ScoreContext, get_metric

T = TypeVar("T")


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a network's output: the tensor itself, or the last element of a
    tuple/list (``(features, logits)`` as NATS/xautodl networks return)."""
    if isinstance(output, (tuple, list)):
        if not output:
            raise ValueError("the network returned an empty tuple")
        output = output[-1]
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"the network returned {type(output).__name__}, not a tensor")
    return output


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
    return g


@contextmanager
def bn_buffers_kept(model: nn.Module) -> Iterator[None]:
    """Restore every BatchNorm running statistic (and counter) after the block: a
    training-mode forward pass then leaves the network as it was."""
    saved = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats:
            saved.append((m, {k: b.clone() for k, b in m.named_buffers(recurse=False)}))
    try:
        yield
    finally:
        with torch.no_grad():
            for m, bufs in saved:
                for k, b in m.named_buffers(recurse=False):
                    if k in bufs:
                        b.copy_(bufs[k])


class ArchState:
    """Per-architecture state shared by the metrics of one architecture: the pristine
    network, the batch, the shared probe and memoized computations."""

    def __init__(
        self,
        pristine: nn.Module,
        *,
        shape: DatasetShape,
        batch_size: int,
        device: torch.device,
        seed: int,
        ctx: ScoreContext,
        bn_mode: str = "batch",
        memory_format: torch.memory_format = torch.contiguous_format,
        inputs: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        probe: Callable[[], Any] | None = None,
        space: Any = None,
        arch: str | None = None,
        lend: bool = False,
        rebuild: Callable[[], nn.Module] | None = None,
    ) -> None:
        self.pristine = pristine
        self.shape = shape
        self.batch_size = int(batch_size)
        self.device = device
        self.seed = int(seed)
        self.ctx = ctx
        self.bn_mode = bn_mode
        self.memory_format = memory_format
        self.inputs = inputs
        self.targets = targets
        self._probe = probe
        self.space = space
        self.arch = arch
        self.memo: dict[Any, Any] = {}
        self._scratch: dict[torch.dtype | None, nn.Module] = {}
        self.lend = lend and rebuild is not None
        self._rebuild = rebuild
        self._snapshot: _Snapshot | None = None
        self._lent = False
        self.rebuilds = 0

    def fresh(self, dtype: torch.dtype | None = None) -> nn.Module:
        """A new copy of the pristine network (same seeded weights), optionally
        converted."""
        m = copy.deepcopy(self.pristine)
        if self._lent:  # the copy has the borrower's changes: take them back
            assert self._snapshot is not None
            if not self._snapshot.restore(m):
                m = self._build_again()
        if dtype is not None:
            m = m.to(dtype=dtype)
        return m

    def clean(self) -> nn.Module:
        """The pristine network, in its pristine state (taken back if it was lent)."""
        if self._lent:
            assert self._snapshot is not None
            if not self._snapshot.restore(self.pristine):
                self.pristine = self._build_again()
                self._snapshot = None
            self._lent = False
        return self.pristine

    def _build_again(self) -> nn.Module:
        assert self._rebuild is not None
        self.rebuilds += 1
        return self._rebuild()

    def borrow(self) -> nn.Module:
        """The pristine network lent to one ``fresh_network`` metric (see the module doc)."""
        m = self.clean()
        if self._snapshot is None:
            self._snapshot = _Snapshot(m)
        self._lent = True
        return m

    def scratch(self, dtype: torch.dtype | None = None) -> nn.Module:
        """The working copy of the pristine network for one metric at a time: made once
        per dtype (a deep copy), then reset in place to the pristine state (weights,
        buffers, ``.grad``, ``requires_grad``, train/eval modes) for the next metric. A
        copy whose structure or hooks a metric changed is replaced by a new one."""
        if dtype is None and self.lend:
            return self.borrow()
        m = self._scratch.get(dtype)
        if m is not None and _reset(m, self.clean()):
            return m
        m = self._scratch[dtype] = self.fresh(dtype)
        return m

    def probe(self) -> Any:
        if self._probe is None:
            raise RuntimeError("no shared forward pass is available here")
        self.clean()
        return self._probe()

    def input_for(self, metric: Metric) -> MetricInput:
        if metric.needs_data and self.inputs is None:
            raise UsageError(f"{metric.name} needs input images.", "Pass --data.")
        if metric.needs_labels and self.targets is None:
            raise UsageError(f"{metric.name} needs labels (targets).")
        return MetricInput(self, metric)


class _Snapshot:
    """A network's state as built: every parameter and buffer (values copied), the
    ``requires_grad`` flags, each module's training flag, and its structure (module
    types, hook counts, parameter and buffer names, shapes and dtypes) to check before
    putting the values back."""

    def __init__(self, model: nn.Module) -> None:
        self.structure = _structure(model)
        with torch.no_grad():
            self.params = [(p.detach().clone(), p.requires_grad) for p in model.parameters()]
            self.buffers = [b.detach().clone() for b in model.buffers()]
        self.training = [m.training for m in model.modules()]

    def restore(self, model: nn.Module) -> bool:
        """Put the recorded state back into ``model`` in place; False, changing nothing,
        when its structure, dtypes or hooks differ (the caller builds again)."""
        if _structure(model) != self.structure:
            return False
        _put_back(model, self.params, self.buffers, self.training)
        return True


def _put_back(
    model: nn.Module,
    params: list[tuple[torch.Tensor, bool]],
    buffers: list[torch.Tensor],
    training: list[bool],
) -> None:
    """Copy values into ``model``'s parameters (``.grad`` cleared, ``requires_grad``
    set) and buffers, and set each module's training flag, in ``modules()`` order."""
    with torch.no_grad():
        for p, (v, req) in zip(model.parameters(), params, strict=True):
            p.copy_(v)
            p.grad = None
            p.requires_grad_(req)
        for b, v in zip(model.buffers(), buffers, strict=True):
            b.copy_(v)
    for m, t in zip(model.modules(), training, strict=True):
        m.training = t


def _structure(model: nn.Module, dtypes: bool = True) -> tuple[Any, ...]:
    mods = tuple(
        (
            type(m),
            "forward" in m.__dict__,
            len(m._forward_hooks),
            len(m._forward_pre_hooks),
            len(m._backward_hooks),
        )
        for m in model.modules()
    )
    params = tuple((n, p.shape, p.dtype if dtypes else None) for n, p in model.named_parameters())
    bufs = tuple((n, b.shape, b.dtype if dtypes else None) for n, b in model.named_buffers())
    return mods, params, bufs


def _reset(copy_: nn.Module, pristine: nn.Module) -> bool:
    """Put ``copy_`` (a deep copy of ``pristine``, maybe in another dtype) back into the
    pristine state in place; False, changing nothing, when its structure or hooks no
    longer match."""
    if _structure(copy_, dtypes=False) != _structure(pristine, dtypes=False):
        return False
    _put_back(
        copy_,
        [(p, p.requires_grad) for p in pristine.parameters()],
        list(pristine.buffers()),
        [m.training for m in pristine.modules()],
    )
    return True


class MetricInput:
    """The view of one architecture that one model-path metric gets (see module doc)."""

    def __init__(self, state: ArchState, metric: Metric) -> None:
        self._state = state
        self.metric = metric
        self._model: nn.Module | None = None
        self.inputs = state.inputs if metric.needs_data else None
        self.targets = state.targets if metric.needs_labels else None
        self.shape = state.shape
        self.batch_size = state.batch_size
        self.device = state.device
        self.seed = state.seed
        self.ctx = state.ctx
        self.bn_mode = state.bn_mode
        self.memory_format = state.memory_format
        self.space = state.space
        self.arch = state.arch

    @property
    def model(self) -> nn.Module:
        """The network (see the module doc), made on first use: a metric that only reads
        a shared result never pays for a copy."""
        if self._model is None:
            st = self._state
            if self.metric.needs_float64:
                self._model = st.scratch(torch.float64)
            elif self.metric.needs_fresh_network:
                self._model = st.scratch(None)
            else:
                self._model = st.clean()
        return self._model

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64 if self.metric.needs_float64 else torch.float32

    @property
    def num_classes(self) -> int:
        return self.shape.num_classes

    def input_shape(self, batch: int | None = None) -> tuple[int, int, int, int]:
        """(K, C, H, W) of the run (K = the batch size unless given)."""
        return self.shape.input_shape(self.batch_size if batch is None else batch)

    def gaussian(self, batch: int | None = None, salt: int = 0) -> torch.Tensor:
        """Seeded N(0, 1) inputs of the run's shape, in the metric's dtype, on its
        device, in the run's memory format. The same (architecture seed, salt) gives the
        same values."""
        g = seeded_generator(self.seed * 1_000_003 + salt)
        x = torch.randn(self.input_shape(batch), generator=g, dtype=torch.float32)
        x = x.to(device=self.device, dtype=self.dtype)
        return x.contiguous(memory_format=self.memory_format)

    def ones(self, batch: int | None = None) -> torch.Tensor:
        x = torch.ones(self.input_shape(batch), device=self.device, dtype=self.dtype)
        return x.contiguous(memory_format=self.memory_format)

    def fresh(self, dtype: torch.dtype | None = None) -> nn.Module:
        """Another fresh copy of the pristine network."""
        return self._state.fresh(dtype)

    def shared(self, key: Any, fn: Callable[[MetricInput], T]) -> T:
        """``fn(self)`` computed once per architecture under ``key`` and shared with every
        metric that asks for the same key (e.g. one gradient pass read by several)."""
        memo = self._state.memo
        if key not in memo:
            memo[key] = fn(self)
        return memo[key]  # type: ignore[no-any-return]

    @property
    def probe(self) -> Any:
        """The shared no-grad forward pass (a ``ModelProbe`` that has run)."""
        return self._state.probe()

    @staticmethod
    def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return logits_of(model(x))


def compute_score(metric: Metric, state: ArchState) -> Score:
    """One metric on one architecture through its probe or model path."""
    if metric.from_probe is not None:
        return Score.of(metric.from_probe(state.probe(), state.ctx))
    if metric.from_model is None:
        raise UsageError(f"{metric.name} cannot be computed on a network.")
    return Score.of(metric.from_model(state.input_for(metric)))


def compute(
    name: str,
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    *,
    bn_mode: str = "batch",
    seed: int = 0,
    bytes_per_param: float = 1.0,
    num_classes: int | None = None,
    params: dict[str, Any] | None = None,
) -> float:
    """Score any ``nn.Module`` with any registered metric; the value (NaN, ±inf kept).

    ``inputs``: a (K, C, H, W) batch, which also gives data-free metrics their input
    shape and batch size. ``targets``: (K,) class indices, for metrics that need labels.
    The caller's model is not changed (metrics work on copies where they modify).
    Inputs a metric makes itself (Gaussian, all-ones) take the layout of ``inputs``:
    pass a channels-last batch and a channels-last model (``model.to(memory_format=
    torch.channels_last)``) to get exactly what a run with the default
    ``--memory-format channels_last`` computes.
    ``params``: the metric's own settings (``--param`` on the command line; e.g.
    ``{"swap_mu": 500, "swap_sigma": 500}`` for swap_reg); defaults otherwise.
    """
    from nasfilter.metrics.probe import ModelProbe

    m = get_metric(name)
    if m.aggregate is not None:
        return _compute_aggregate(
            m,
            model,
            inputs,
            targets,
            bn_mode=bn_mode,
            seed=seed,
            bytes_per_param=bytes_per_param,
            num_classes=num_classes,
            params=params,
        )
    if not m.model_capable:
        raise UsageError(f"{name} is computed from an architecture's identity only.")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        raise UsageError("inputs must be a (K, C, H, W) tensor.")
    if m.needs_labels and targets is None:
        raise UsageError(f"{name} needs targets (class labels, shape (K,)).")
    p = next(model.parameters(), None)
    device = p.device if p is not None else inputs.device
    k, c, h, w = (int(d) for d in inputs.shape)
    if num_classes is None:
        with torch.no_grad(), bn_buffers_kept(model):
            was = model.training
            model.eval()
            try:
                num_classes = int(logits_of(model(inputs[:1])).shape[-1])
            finally:
                model.train(was)
    shape = DatasetShape("custom", num_classes, h, c, None if w == h else w)
    pristine = copy.deepcopy(model)
    settings: dict[str, Any] = dict(m.params)
    settings.update(params or {})
    ctx = ScoreContext(dataset=shape, bytes_per_param=bytes_per_param, settings=settings)
    holder: dict[str, Any] = {}

    def probe() -> Any:
        if "p" not in holder:
            opts = dict(m.probe_options)
            holder["p"] = ModelProbe(pristine, inputs, bn_mode=bn_mode, **opts).run()
        return holder["p"]

    state = ArchState(
        pristine,
        shape=shape,
        batch_size=k,
        device=device,
        seed=seed,
        ctx=ctx,
        bn_mode=bn_mode,
        memory_format=(
            torch.channels_last
            if inputs.is_contiguous(memory_format=torch.channels_last)
            and not inputs.is_contiguous()
            else torch.contiguous_format
        ),
        inputs=inputs,
        targets=targets,
        probe=probe,
    )
    return compute_score(m, state).value


def _compute_aggregate(
    m: Metric, model: nn.Module, inputs: torch.Tensor, targets: Any, **kw: Any
) -> float:
    """A formula aggregate on any module: its components through ``compute``, then its
    formula. A rank aggregate has no value for one network (it ranks a population)."""
    from nasfilter.metrics.aggregate import formula_value

    agg = m.aggregate
    assert agg is not None
    if agg.kind == "rank":
        raise UsageError(
            f"{m.name} ranks architectures within a population; one network has no value.",
            f"Score its components ({', '.join(agg.names)}) and rank them, or score a run.",
        )
    values = {}
    for c in agg.names:
        v = compute(c, model, inputs, targets, **kw)
        values[c] = (v, Score.of(v).status)
    return formula_value(agg, values)[0]
