"""Sharpness-Aware Minimization (Foret et al., 2021, arXiv:2010.01412) around any torch optimizer; ASAM's adaptive
scale (Kwon et al., 2021) with `adaptive=True`.

One update = two forward / backward passes on the same batch:

    loss(w).backward();            sam.perturb()     # w <- w + e(w),  e = rho * g / ||g||  (ASAM: rho * w^2 g / ||w g||)
    loss(w + e).backward();        sam.unperturb()   # back to w, keeping the gradient taken at w + e
    sam.step()                                       # the base optimizer's step with that gradient

The loop calls the three itself (instead of davda54/sam's closure) so that AMP's GradScaler, gradient sync under DDP
and BatchNorm statistics stay under its control: `perturb` only needs the gradient's direction, which the loss scale
does not change, and `step` is what `GradScaler.step` calls after unscaling. `param_groups` is the base optimizer's,
so timm / torch schedulers set its learning rate; the state dict is the base optimizer's (e is transient).
"""
from __future__ import annotations

import torch


class SAM(torch.optim.Optimizer):
    def __init__(self, base: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False):
        if rho <= 0:
            raise ValueError(f"SAM rho must be > 0, got {rho}")
        self.base = base
        self.rho, self.adaptive = float(rho), bool(adaptive)
        super().__init__(base.param_groups, base.defaults)   # hooks and step patching of a torch optimizer
        # share the base optimizer's groups and state: schedulers and GradScaler see one set of parameters
        self.param_groups = base.param_groups
        self.state = base.state
        self._e: dict[torch.Tensor, torch.Tensor] = {}

    def _params(self):
        return [p for g in self.param_groups for p in g["params"] if p.grad is not None]

    @torch.no_grad()
    def perturb(self) -> bool:
        """Move to the (approximately) worst point within radius rho and zero the gradients.
        Returns False, moving nothing, when the gradient is not finite (an fp16 overflow the scaler will skip)."""
        ps = self._params()
        if not ps:
            return False
        scaled = [(p.abs() * p.grad) if self.adaptive else p.grad for p in ps]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s.float()) for s in scaled]))
        ok = bool(torch.isfinite(norm)) and float(norm) > 0
        if ok:
            k = self.rho / (norm + 1e-12)
            for p in ps:
                e = (p * p * p.grad if self.adaptive else p.grad) * k.to(p.dtype)
                p.add_(e)
                self._e[p] = e
        for p in ps:
            p.grad = None
        return ok

    @torch.no_grad()
    def unperturb(self) -> None:
        """Back to the weights before `perturb`; the gradients (taken at the perturbed point) are kept."""
        for p, e in self._e.items():
            p.sub_(e)
        self._e.clear()

    def step(self, closure=None):
        if self._e:
            raise RuntimeError("SAM.step() while perturbed: call unperturb() after the second backward pass")
        return self.base.step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return self.base.state_dict()

    def load_state_dict(self, state_dict) -> None:
        self.base.load_state_dict(state_dict)


class frozen_bn_stats:
    """Context: BatchNorm layers normalise with batch statistics as usual but do not update their running mean /
    variance (or batch count), so SAM's second pass on the same batch does not count it twice."""

    def __init__(self, model: torch.nn.Module):
        self.bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                    and m.track_running_stats and m.training]

    def __enter__(self):
        self.saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
                      for m in self.bns]
        for m in self.bns:
            m.momentum = 0.0
        return self

    def __exit__(self, *exc):
        for m, (mom, n) in zip(self.bns, self.saved):
            m.momentum = mom
            if n is not None:
                m.num_batches_tracked.copy_(n)
        return False
