"""Which tensors a torch module holds, under which names, and how each is to be filled.

A :class:`Slot` is one tensor (a parameter or a buffer) with every name it is reachable by (tied
weights are one slot, filled once), the places in the module tree that hold it, and how it is
filled: the first rule whose pattern matches one of its names, else torch's default for its
module (:mod:`gpuinit.torch.defaults`), else, for a module gpuinit does not know, the module's
own ``reset_parameters`` where the caller allows it. Its stream is keyed by the alphabetically
first of its names, so the numbers never depend on the order the model was built in.

Everything here only reads the module: the checks run before anything is allocated or changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from .. import checks, dtypes
from ..errors import ArgumentError, ArgumentTypeError, InitializerError
from ..init import Initializer, create
from . import defaults

UNKNOWN = ("error", "reset")
RULE_HINT = ("pass rules={r'<pattern>': initializer} with a gpuinit initializer (gpuinit.init.Normal(0.02), "
             "gpuinit.init.KaimingUniform(a=math.sqrt(5)), 'zeros'), or a function fn(tensor) that fills "
             "the tensor in place")

# torch dtypes the fills write, and their NumPy twins (bfloat16 through ml_dtypes).
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    if dtype is torch.bfloat16:
        return dtypes.as_dtype("bfloat16")
    return np.dtype(str(dtype).replace("torch.", ""))


@dataclass
class Slot:
    """One tensor of a module and how it is filled.

    Attributes:
        name: the alphabetically first of ``names``: its stream's key.
        names: every name it has in ``named_parameters``/``named_buffers`` (tied tensors: several).
        owners: ``(module, local name)`` of each place that holds it.
        is_param: a parameter (else a buffer).
        how: a gpuinit :class:`~gpuinit.init.Initializer`, a function ``fn(tensor)``, ``"zero"``
            (an integer tensor torch zeroes), ``"reset"`` (its module's ``reset_parameters``), or
            None (nothing to fill: a rule is needed).
        zero_rows: rows of dimension 0 zeroed after the fill (``Embedding.padding_idx``).
        source: where ``how`` came from, for messages and plans.
    """

    name: str
    names: tuple
    owners: list
    is_param: bool
    how: object = None
    zero_rows: tuple = ()
    source: str = ""
    tensor: object = None  # the tensor when collected (current() reads them again)

    def current(self) -> list:
        """Every distinct tensor its owners hold now (``to_empty`` unties weights)."""
        seen, out = set(), []
        for module, local in self.owners:
            t = (module._parameters if self.is_param else module._buffers)[local]
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)
        return out

    @property
    def kind(self) -> str:
        return "parameter" if self.is_param else "buffer"


def check_rules(rules, where: str) -> list:
    """``rules`` as ``[(pattern text, compiled, value)]``, values checked.

    Raises:
        ArgumentTypeError: not a dict, a pattern not a string, or a value that is neither an
            initializer nor a function; ArgumentError: a pattern that is not a regular expression.
    """
    if rules is None:
        return []
    if not isinstance(rules, dict):
        raise ArgumentTypeError(f"{where}: rules must be a dict {{pattern: initializer}}, got {rules!r} "
                                f"({type(rules).__name__}); {RULE_HINT}")
    out = []
    for pattern, value in rules.items():
        regex = checks.pattern(pattern, "rule pattern", where)
        if isinstance(value, str) or (isinstance(value, type) and issubclass(value, Initializer)):
            value = create(value)
        elif not isinstance(value, Initializer) and not callable(value):
            raise ArgumentTypeError(f"{where}: rule {pattern!r} maps to {value!r} ({type(value).__name__}), "
                                    f"which is neither an initializer nor a function; {RULE_HINT}")
        out.append((pattern, regex, value))
    return out


def collect(module, rules, unknown: str, where: str, needs, strict: bool = True) -> list:
    """The slots of ``module`` whose tensor ``needs(tensor)`` says to fill, each with its ``how``
    (``strict=False``: a plan's question; tensors nothing covers keep ``how=None``, rules matching
    nothing are allowed).

    Raises:
        ArgumentError: a rule matching nothing, or an integer tensor with an initializer;
        InitializerError: tensors that need a fill no rule or default gives, listed with the fix.
    """
    if not isinstance(module, torch.nn.Module):
        raise ArgumentTypeError(f"{where} takes a torch.nn.Module, got {module!r} ({type(module).__name__}); "
                                "pass the model, e.g. built under `with torch.device('meta'):`")
    checks.choice(unknown, UNKNOWN, "unknown", where,
                  hint="pass unknown='error' (list what needs a rule) or unknown='reset' (run those modules' "
                       "own reset_parameters)")
    rules = check_rules(rules, where)
    groups: dict = {}
    modules = list(module.named_modules(remove_duplicate=False))
    for prefix, mod in modules:
        for is_param, table in ((True, mod._parameters), (False, mod._buffers)):
            for local, t in table.items():
                if t is None:
                    continue
                name = f"{prefix}.{local}" if prefix else local
                slot = groups.get(id(t))
                if slot is None:
                    slot = groups[id(t)] = Slot(name, (), [], is_param, tensor=t)
                slot.names += (name,)
                slot.owners.append((mod, local))
    # torch's defaults: each module's own, then what its containers set, the outermost last
    # (torch runs a container's reset after its children's, so the container's wins).
    found = {}
    for prefix, mod in modules:
        own = defaults.own_defaults(mod)
        if own is None:
            continue  # a module gpuinit does not know: its tensors need rules (or unknown="reset")
        for local, d in own.items():
            found[f"{prefix}.{local}" if prefix else local] = (d, type(mod).__name__)
    for prefix, mod in reversed(modules):
        for rel, d in defaults.overrides(mod).items():
            found[f"{prefix}.{rel}" if prefix else rel] = (d, type(mod).__name__)
    lazy = [s.name for s in groups.values()
            if isinstance(s.tensor, torch.nn.parameter.UninitializedTensorMixin)]
    if lazy:
        raise ArgumentError(f"{where}: {lazy[:4]!r} are lazy (torch.nn.Lazy* modules: their shapes are not known "
                            "yet); give those layers their input sizes (nn.Linear(in_features, ...)), or run one forward "
                            "on a meta input first (model(torch.empty(batch, features, device='meta'))), which "
                            "fixes their shapes without allocating")
    matched = set()
    slots, missing, clashes = [], [], []
    for slot in groups.values():
        slot.names = tuple(sorted(slot.names))
        slot.name = slot.names[0]
        tensor = slot.tensor
        if not needs(tensor):
            continue
        for pattern, regex, value in rules:
            if any(regex.search(n) for n in slot.names):
                matched.add(pattern)
                slot.how, slot.source = value, f"rule {pattern!r}"
                if isinstance(value, Initializer):  # an Embedding's padding row stays zero, as torch keeps it
                    slot.zero_rows = next((found[n][0].zero_rows for n in slot.names if n in found), ())
                break
        else:
            hits = [(n,) + found[n] for n in slot.names if n in found]
            if len({(repr(d.initializer), d.zero_rows) for _, d, _ in hits}) > 1:
                # a tensor tied across module types (lm_head.weight = wte.weight): torch's eager
                # build keeps the first owner's numbers, reset_parameters the last one's; which
                # the user meant, only they know
                clashes.append((slot, hits))
                slot.source = "needs a rule (tied across module types whose defaults differ)"
                _check_dtype(slot, tensor, where)
                slots.append(slot)
                continue
            if hits:
                _, d, cls = hits[0]
                slot.how, slot.zero_rows, slot.source = d.initializer, d.zero_rows, f"default of {cls}"
            else:
                owner = slot.owners[0][0]
                if (unknown == "reset" and slot.is_param
                        and callable(getattr(owner, "reset_parameters", None))):
                    slot.how, slot.source = "reset", f"{type(owner).__name__}.reset_parameters"
                else:  # a buffer: reset_parameters does not make buffers (RoPE frequencies, masks)
                    missing.append(slot)
        _check_dtype(slot, tensor, where)
        slots.append(slot)
    unmatched = [p for p, _, _ in rules if p not in matched]
    if unmatched and strict:
        regex = next(r for p, r, _ in rules if p == unmatched[0])
        shadowed = [s.name for s in slots if any(regex.search(n) for n in s.names)]
        if shadowed:
            raise ArgumentError(f"{where}: rule {unmatched[0]!r} is never used: every tensor it matches "
                                f"({shadowed[:3]!r}) is taken by an earlier rule (the first matching rule "
                                "wins, and tied tensors are matched by any of their names); remove it, or "
                                "move it before the other")
        raise ArgumentError(f"{where}: rule pattern(s) {unmatched!r} match no tensor that needs filling; "
                            "names are those of module.named_parameters()/named_buffers() (e.g. "
                            f"{[s.name for s in slots[:3]]!r}); fix or remove the rule")
    if clashes and strict:
        slot, hits = clashes[0]
        told = "; ".join(f"{n!r} ({cls}: {d.initializer!r})" for n, d, cls in hits)
        raise InitializerError(
            f"{where}: {slot.kind} {slot.name!r} is tied across modules whose torch defaults differ: {told}. "
            "Nothing was changed. Say which one it gets with a rule, e.g. "
            f"rules={{{re.escape(slot.name) + '$'!r}: {hits[-1][1].initializer!r}}} ({hits[-1][2]}'s default); "
            f"{RULE_HINT}")
    if missing and strict:
        lines = "; ".join(f"{s.kind} {s.name!r} of {type(s.owners[0][0]).__name__}" for s in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        example = ", ".join(f"{re.escape(s.name) + '$'!r}: {_example_fill(s)}" for s in missing[:2])
        reset = ("; or pass unknown='reset' to run those modules' own reset_parameters() on the materialized "
                 "parameters (torch's random numbers, not gpuinit's streams)"
                 if any(s.is_param for s in missing) and unknown != "reset" else "")
        parametrized = ("; tensors of a parametrization (weight_norm, spectral_norm) are not torch's default "
                        "recipe: materialize before registering the parametrization, or give them rules"
                        if any(type(s.owners[0][0]).__name__ == "ParametrizationList" or
                               hasattr(s.owners[0][0], "parametrizations") or
                               s.name.endswith(("weight_g", "weight_v", "weight_orig")) for s in missing) else "")
        raise InitializerError(
            f"{where}: gpuinit does not know how to initialize {lines}{more}: their modules are not "
            "torch.nn layers it knows (or override reset_parameters). Nothing was changed. "
            f"{RULE_HINT}, e.g. rules={{{example}}} (pick the values your model needs){reset}; buffers such as "
            "RoPE frequencies computed in __init__ always need a rule (a function fn(tensor) that fills or "
            f"returns them){parametrized}")
    return slots


def _example_fill(slot) -> str:
    """A starting point for a rule in an error message, by what the tensor looks like: a function
    for a buffer (computed values), ones for a 1-D gain, zeros for a bias, else a small normal."""
    leaf = slot.name.rsplit(".", 1)[-1]
    if not slot.is_param:
        return "lambda t: t.copy_(...)"  # ... for the values: pasted as it is, it fails loudly
    if leaf.endswith("bias"):
        return "'zeros'"
    if slot.tensor.dim() == 1:
        return "'ones'"
    return "gpuinit.init.Normal(0.02)"


def _check_dtype(slot, tensor, where) -> None:
    """Refuse an initializer for a tensor the fills cannot write (an integer or complex one)."""
    dtype = tensor.dtype
    if dtype in FLOATS:
        if dtype is torch.bfloat16 and dtypes.bfloat16() is None:
            raise ArgumentError(f"{where}: {slot.kind} {slot.name!r} is bfloat16, which gpuinit fills through "
                                "ml_dtypes: pip install ml_dtypes (or gpuinit[bf16])")
        return
    if not isinstance(slot.how, Initializer):
        return  # a function, "zero", "reset", or nothing yet (reported as missing)
    if slot.is_param:
        raise ArgumentError(f"{where}: parameter {slot.name!r} has dtype {dtype}, not a float dtype "
                            f"({', '.join(str(d) for d in FLOATS)}), and {slot.source} gives it {slot.how!r}; "
                            "give it a float dtype, make it a buffer, or give it a rule with a function "
                            "fn(tensor) that fills it in place")
    raise ArgumentError(f"{where}: {slot.source} gives buffer {slot.name!r} the initializer {slot.how!r}, "
                        f"but its dtype is {dtype}, not a float dtype gpuinit fills; exclude it from the "
                        "pattern, or give it a function fn(tensor) that fills it in place")
