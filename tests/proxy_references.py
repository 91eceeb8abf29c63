"""Independent re-implementations of the zero-cost proxies, written from the original
repositories' definitions (not from nasfilter's code), used as test references.

Each function takes the pristine network (it works on its own deep copy), the batch,
the labels, and, for the proxies that draw their own random numbers, the architecture
seed: nasfilter's documented protocol is that draw number ``salt`` comes from
``torch.Generator().manual_seed((seed * 1_000_003 + salt) mod 2**63)`` on the CPU in
float32 (docs/metrics.md), which these functions reproduce on their own.

Sources (read, not copied): SamsungLabs/zero-cost-nas foresight/pruners/measures/*.py and
foresight/pruners/predictive.py (copynet, sum_arr); automl/NASLib
naslib/predictors/utils/pruners/measures/{jacov,epe_nas,zen,l2_norm}.py and
naslib/predictors/zerocost.py (synflow's log); VITA-Group/TENAS lib/procedures/ntk.py;
cvlab-yonsei/AZ-NAS NB201/ZeroShotProxy/{compute_te_nas_score,compute_az_nas_score,
compute_zico_score}.py; SLDGroup/ZiCo ZeroShotProxy/compute_zico.py; HamsterMimi/MeCo
correlation/foresight/pruners/measures/meco.py; pym1024/SWAP src/metrics/swap.py;
idstcv/ZenNAS ZeroShotProxy/compute_zen_score.py.
"""

from __future__ import annotations

import copy
import math
import types

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MASK63 = 0x7FFF_FFFF_FFFF_FFFF


def gen(seed: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + salt) & MASK63)


def randn_input(seed: int, salt: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape, generator=gen(seed, salt), dtype=torch.float32)


def out_logits(y):  # type: ignore[no-untyped-def]
    return y[-1] if isinstance(y, (tuple, list)) else y


def prunable(net: nn.Module, bn: bool = True) -> nn.Module:
    """zero-cost-nas' copynet: a deep copy; bn=False turns BatchNorm2d/1d into no-ops."""
    net = copy.deepcopy(net)
    if not bn:
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                m.forward = types.MethodType(lambda self, x: x, m)
    net.train()
    return net


def conv_linear(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d) or isinstance(m, nn.Linear)]


def sum_arr(arr: list[torch.Tensor]) -> float:
    total = 0.0
    for a in arr:
        total += torch.sum(a.detach())
    return float(total)


# -- zero-cost-nas ----------------------------------------------------------------------
def ref_grad_norm(net, x, y):  # type: ignore[no-untyped-def]
    net = prunable(net)
    net.zero_grad()
    F.cross_entropy(out_logits(net(x)), y).backward()
    return sum_arr(
        [
            m.weight.grad.norm() if m.weight.grad is not None else torch.zeros_like(m.weight)
            for m in conv_linear(net)
        ]
    )


def ref_plain(net, x, y):  # type: ignore[no-untyped-def]
    net = prunable(net)
    net.zero_grad()
    F.cross_entropy(out_logits(net(x)), y).backward()
    return sum_arr(
        [
            m.weight.grad * m.weight if m.weight.grad is not None else torch.zeros_like(m.weight)
            for m in conv_linear(net)
        ]
    )


def ref_snip(net, x, y):  # type: ignore[no-untyped-def]
    net = prunable(net)
    for m in conv_linear(net):
        m.weight_mask = nn.Parameter(torch.ones_like(m.weight))
        m.weight.requires_grad = False
        if isinstance(m, nn.Conv2d):

            def fwd(self, inp):  # type: ignore[no-untyped-def]
                return F.conv2d(
                    inp,
                    self.weight * self.weight_mask,
                    self.bias,
                    self.stride,
                    self.padding,
                    self.dilation,
                    self.groups,
                )

        else:

            def fwd(self, inp):  # type: ignore[no-untyped-def]
                return F.linear(inp, self.weight * self.weight_mask, self.bias)

        m.forward = types.MethodType(fwd, m)
    net.zero_grad()
    F.cross_entropy(out_logits(net(x)), y).backward()
    return sum_arr(
        [
            m.weight_mask.grad.abs()
            if m.weight_mask.grad is not None
            else torch.zeros_like(m.weight)
            for m in conv_linear(net)
        ]
    )


def ref_fisher(net, x, y):  # type: ignore[no-untyped-def]
    """Activations z of every conv/linear output kept with retain_grad; after one
    backward pass Δ_k = ½ mean_n (Σ_spatial z·∂L/∂z)², broadcast to the channel's
    weights (reshape_elements) and summed."""
    net = prunable(net)
    layers = conv_linear(net)
    acts: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(layers))}

    def keep(i):  # type: ignore[no-untyped-def]
        def hook(mod, args, out):  # type: ignore[no-untyped-def]
            out.retain_grad()
            acts[i].append(out)

        return hook

    handles = [m.register_forward_hook(keep(i)) for i, m in enumerate(layers)]
    net.zero_grad()
    F.cross_entropy(out_logits(net(x)), y).backward()
    for h in handles:
        h.remove()
    per_layer = []
    for i, m in enumerate(layers):
        fisher = None
        for a in acts[i]:
            act, grad = a.detach(), a.grad
            if grad is None:
                continue
            g_nk = torch.sum(act * grad, list(range(2, act.dim()))) if act.dim() > 2 else act * grad
            d = g_nk.pow(2).mean(0).mul(0.5)
            fisher = d if fisher is None else fisher + d
        ch = torch.abs(fisher) if fisher is not None else torch.zeros(m.weight.shape[0])
        sh = m.weight.shape[1:]
        per_layer.append(torch.stack([torch.Tensor(sh).fill_(float(v)) for v in ch], dim=0))
    return sum_arr(per_layer)


def ref_grasp(net, x, y):  # type: ignore[no-untyped-def]
    net = prunable(net)
    weights = []
    for m in conv_linear(net):
        weights.append(m.weight)
        m.weight.requires_grad_(True)
    net.zero_grad()
    grad_w = list(
        torch.autograd.grad(F.cross_entropy(out_logits(net(x)), y), weights, allow_unused=True)
    )
    loss = F.cross_entropy(out_logits(net(x)), y)
    grad_f = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    z = 0
    for gw, gf in zip(grad_w, grad_f, strict=True):
        if gw is not None:
            z += (gw.data * gf).sum()
    z.backward()
    return sum_arr(
        [
            -m.weight.data * m.weight.grad
            if m.weight.grad is not None
            else torch.zeros_like(m.weight)
            for m in conv_linear(net)
        ]
    )


def ref_synflow_sum(net, x):  # type: ignore[no-untyped-def]
    """The raw synflow sum (float64); nasfilter stores its natural log."""
    net = prunable(net, bn=False)
    with torch.no_grad():
        for _, p in net.state_dict().items():
            p.abs_()
    net.zero_grad()
    net.double()
    ones = torch.ones([1] + list(x[0, :].shape)).double()
    torch.sum(out_logits(net(ones))).backward()
    return sum_arr(
        [
            torch.abs(m.weight * m.weight.grad)
            if m.weight.grad is not None
            else torch.zeros_like(m.weight)
            for m in conv_linear(net)
        ]
    )


def ref_l2_norm(net):  # type: ignore[no-untyped-def]
    return sum_arr([m.weight.norm() for m in conv_linear(net)])


# -- input Jacobian -----------------------------------------------------------------------
def input_jacobian(net, x):  # type: ignore[no-untyped-def]
    net = prunable(net)
    net.zero_grad()
    x = x.clone().requires_grad_(True)
    yv = out_logits(net(x))
    yv.backward(torch.ones_like(yv))
    return x.grad.detach().reshape(x.shape[0], -1).numpy(), yv.shape[-1]


def ref_jacob_cov(net, x):  # type: ignore[no-untyped-def]
    jac, _ = input_jacobian(net, x)
    corrs = np.corrcoef(jac)
    v, _ = np.linalg.eig(corrs)
    k = 1e-5
    return float(np.real(-np.sum(np.log(v + k) + 1.0 / (v + k))))


def ref_epe_nas(net, x, y):  # type: ignore[no-untyped-def]
    jac, n_classes = input_jacobian(net, x)
    labels = [y.numpy()]
    k = 1e-5
    per_class: dict = {}
    for i, label in enumerate(labels[0]):
        if label in per_class:
            per_class[label] = np.vstack((per_class[label], jac[i]))
        else:
            per_class[label] = jac[i]
    ind = {}
    for c in per_class:
        try:
            corrs = np.array(np.corrcoef(per_class[c]))
            s = np.sum(np.log(abs(corrs) + k))
            if n_classes > 100:
                s /= len(corrs)
        except Exception:  # noqa: BLE001 - the reference's bare except
            continue
        ind[c] = s
    score = 0
    if n_classes <= 100:
        for c in ind:
            score += np.absolute(ind[c])
    else:
        for c in ind:
            for cj in ind:
                score += np.absolute(ind[c] - ind[cj])
        if len(ind) > 0:
            score /= len(ind)
    return float(score)


# -- TE-NAS -------------------------------------------------------------------------------
def ref_ntk_cond(net, x):  # type: ignore[no-untyped-def]
    """get_ntk_n with train_mode=True, one batch; the Gram matrix and its eigenvalues in
    float64 (nasfilter's documented precision)."""
    net = prunable(net)
    net.zero_grad()
    logit = out_logits(net(x.clone()))
    grads = []
    for i in range(len(x)):
        logit[i : i + 1].backward(torch.ones_like(logit[i : i + 1]), retain_graph=True)
        g = [
            w.grad.view(-1).detach()
            for name, w in net.named_parameters()
            if "weight" in name and w.grad is not None
        ]
        grads.append(torch.cat(g, -1))
        net.zero_grad()
    gm = torch.stack(grads, 0).double()
    ntk = torch.einsum("nc,mc->nm", gm, gm)
    ev = torch.linalg.eigh(ntk)[0]
    return float(ev[-1] / ev[0])


def ref_linear_regions(net, seed, salt, shape):  # type: ignore[no-untyped-def]
    net = prunable(net)
    feats: list[torch.Tensor] = []

    def hook(mod, inp, out):  # type: ignore[no-untyped-def]
        if isinstance(inp, tuple) and len(inp[0].size()) == 4:
            feats.append(out.detach())

    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(hook)
    xin = randn_input(seed, salt, shape)
    with torch.no_grad():
        net(xin)
    act = torch.sign(torch.cat([f.view(xin.size(0), -1) for f in feats], 1)).double()
    res = act @ (1 - act).T
    res = res + res.T
    res = 1 - torch.sign(res)
    res = res.sum(1)
    return float((1.0 / res).sum())


# -- ZiCo ---------------------------------------------------------------------------------
def ref_zico(net, x, y):  # type: ignore[no-untyped-def]
    net = prunable(net)
    grad_dict: dict[str, list] = {}
    n = x.shape[0]
    for sp in range(2):
        st, en = sp * n // 2, (sp + 1) * n // 2
        net.zero_grad(set_to_none=True)
        F.cross_entropy(out_logits(net(x[st:en])), y[st:en]).backward()
        for name, mod in net.named_modules():
            if isinstance(mod, nn.Conv2d) or isinstance(mod, nn.Linear):
                if mod.weight.grad is not None:
                    grad_dict.setdefault(name, []).append(
                        mod.weight.grad.data.reshape(-1).numpy().copy()
                    )
    total = 0
    for name in grad_dict:
        arr = np.array(grad_dict[name])
        std = np.std(arr, axis=0)
        nz = np.nonzero(std)[0]
        mean_abs = np.mean(np.abs(arr), axis=0)
        tmpsum = np.sum(mean_abs[nz] / std[nz])
        if tmpsum != 0:
            total += np.log(tmpsum)
    return float(total)


# -- MeCo ---------------------------------------------------------------------------------
def ref_meco(net, seed, salt, shape):  # type: ignore[no-untyped-def]
    net = prunable(net)
    results: list[torch.Tensor] = []

    def hook(module, data_input, data_output):  # type: ignore[no-untyped-def]
        fea = data_output[0].detach()
        fea = fea.reshape(fea.shape[0], -1)
        corr = torch.corrcoef(fea)
        corr[torch.isnan(corr)] = 0
        corr[torch.isinf(corr)] = 0
        values = torch.linalg.eig(corr)[0]
        results.append(torch.min(torch.real(values)))

    for _, m in net.named_modules():
        m.register_forward_hook(hook)
    with torch.no_grad():
        net(randn_input(seed, salt, (1, *shape[1:])))
    r = torch.tensor(results)
    r = r[torch.logical_not(torch.isnan(r))]
    r = r[torch.logical_not(torch.isinf(r))]
    return float(torch.sum(r))


# -- Zen, SWAP (Gaussian re-initialisation) --------------------------------------------------
def gaussian_reinit(net, g):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d) or isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, generator=g)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                if m.weight is None:
                    continue
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def ref_zen(net, seed, shape):  # type: ignore[no-untyped-def]
    net = prunable(net)
    pooled: list[torch.Tensor] = []
    for m in net.modules():
        if isinstance(m, nn.AdaptiveAvgPool2d):
            m.register_forward_hook(lambda mod, inp, out: pooled.append(inp[0]))
    with torch.no_grad():
        gaussian_reinit(net, gen(seed, 103))
        inp1 = randn_input(seed, 101, shape)
        inp2 = randn_input(seed, 102, shape)
        mixup = inp1 + 1e-2 * inp2
        net(inp1)
        net(mixup)
        output, mixup_output = pooled
        nas_score = torch.mean(torch.sum(torch.abs(output - mixup_output), dim=[1, 2, 3]))
        log_bn = 0.0
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                log_bn += torch.log(torch.sqrt(torch.mean(m.running_var)))
        return float(torch.log(nas_score) + log_bn)


def ref_swap(net, x, seed, repeats=1):  # type: ignore[no-untyped-def]
    net = prunable(net)
    feats: list[torch.Tensor] = []

    def hook(mod, inp, out):  # type: ignore[no-untyped-def]
        if isinstance(inp, tuple) and len(inp[0].size()) == 4:
            feats.append(out.detach())

    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(hook)
    g = gen(seed, 301)
    xs = x[:16]
    scores = []
    for _ in range(repeats):
        gaussian_reinit(net, g)
        feats.clear()
        with torch.no_grad():
            net(xs)
        act = torch.sign(torch.cat([f.view(xs.size(0), -1) for f in feats], 1))
        scores.append(torch.unique(act.T, dim=0).size(0))
    return float(np.mean(scores))


def ref_param_thousands(net):  # type: ignore[no-untyped-def]
    return (
        np.sum([np.prod(v.size()) for name, v in net.named_parameters() if "auxiliary" not in name])
        / 1e3
    )


# -- AZ-NAS -------------------------------------------------------------------------------
def az_features(net, x):  # type: ignore[no-untyped-def]
    """extract_cell_features of AZ-NAS' TinyNetwork (stem, then each cell); for a network
    without stem/cells, the 4-D outputs of its direct children (nasfilter's fallback).
    A network's own ``extract_cell_features`` comes first (AZ-NAS' protocol)."""
    if hasattr(net, "extract_cell_features"):
        return net.extract_cell_features(x)
    if hasattr(net, "stem") and hasattr(net, "cells"):
        feats = [net.stem(x)]
        for cell in net.cells:
            feats.append(cell(feats[-1]))
        return feats
    feats = []
    for child in net.children():
        child.register_forward_hook(
            lambda mod, inp, out: (
                feats.append(out)
                if isinstance(out, torch.Tensor)
                and out.dim() == 4
                and out.shape[0] == x.shape[0]
                and out.shape[2] * out.shape[3] > 1
                else None
            )
        )
    net(x)
    return feats


def ref_az(net, seed, shape):  # type: ignore[no-untyped-def]
    net = prunable(net)
    g = gen(seed, 202)

    def kaiming(m):  # type: ignore[no-untyped-def]
        if isinstance(m, nn.Conv2d) or isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=g)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            if m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    with torch.no_grad():
        net.apply(kaiming)
    feats = az_features(net, randn_input(seed, 201, shape))
    expr = []
    for f in feats:
        feat = f.detach().clone().double()  # nasfilter's documented precision
        b, c, h, w = feat.size()
        feat = feat.permute(0, 2, 3, 1).contiguous().view(b * h * w, c)
        feat = feat - feat.mean(dim=0, keepdim=True)
        sigma = torch.mm(feat.transpose(1, 0), feat) / feat.size(0)
        s = torch.linalg.eigvalsh(sigma)
        p = s / s.sum()
        expr.append(((-p) * torch.log(p + 1e-8)).sum().item())
    expr_arr = np.array(expr)
    rad = gen(seed, 203)
    scores = []
    for i in reversed(range(1, len(feats))):
        f_out, f_in = feats[i], feats[i - 1]
        g_out = (torch.bernoulli(torch.ones_like(f_out) * 0.5, generator=rad) - 0.5) * 2
        g_in = torch.autograd.grad(
            outputs=f_out, inputs=f_in, grad_outputs=g_out, retain_graph=False
        )[0]
        if g_out.size() == g_in.size() and torch.all(g_in == g_out):
            scores.append(-np.inf)
            continue
        if g_out.size(2) != g_in.size(2) or g_out.size(3) != g_in.size(3):
            g_in = nn.PixelUnshuffle(int(g_in.size(2) / g_out.size(2)))(g_in)
        bo, co, ho, wo = g_out.size()
        bi, ci, hi, wi = g_in.size()
        go = g_out.permute(0, 2, 3, 1).contiguous().view(bo * ho * wo, co)
        gi = g_in.permute(0, 2, 3, 1).contiguous().view(bi * hi * wi, ci)
        mat = torch.mm(gi.transpose(1, 0), go) / (bo * ho * wo)
        if mat.size(0) < mat.size(1):
            mat = mat.transpose(0, 1)
        s = torch.linalg.svdvals(mat)
        scores.append(-s.max().item() - 1 / (s.max().item() + 1e-6) + 2)
    return {
        "az_expressivity": float(np.sum(expr_arr)),
        "az_progressivity": float(np.min(expr_arr[1:] - expr_arr[:-1])),
        "az_trainability": float(np.mean(scores)),
    }


def log_or_inf(s: float) -> float:
    return math.log(s) if s > 0 else -math.inf
