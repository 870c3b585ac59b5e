"""Mixed: choose an initializer per parameter by regular expressions on its name or path."""

from __future__ import annotations

from .. import checks
from ..errors import ArgumentTypeError, InitializerError
from .base import Initializer


class Mixed(Initializer):
    """The first initializer whose pattern matches the parameter fills it.

    A pattern matches (``re.match``) the parameter's name (``dense0_weight``) or its structural path
    (``0.weight``). End with a ``".*"`` pattern to give a default.

    Args:
        patterns: regular expressions.
        initializers: one initializer (or initializer name) per pattern.
    """

    def __init__(self, patterns, initializers):
        if isinstance(patterns, str) or isinstance(initializers, (str, Initializer)):
            raise ArgumentTypeError("Mixed takes a list of patterns and a list of initializers: pass "
                                    "Mixed(['.*bias', '.*'], [Zero(), Uniform()]), not single values")
        patterns, initializers = list(patterns), list(initializers)
        if len(patterns) != len(initializers):
            raise InitializerError(f"Mixed needs one initializer per pattern: got {len(patterns)} "
                                   f"patterns and {len(initializers)} initializers")
        from . import create
        super().__init__(patterns=patterns, initializers=initializers)
        self.map = [(checks.pattern(p, "pattern", "Mixed", error=InitializerError), create(i))
                    for p, i in zip(patterns, initializers)]

    def fill_for(self, desc):
        for prog, initializer in self.map:
            if prog.match(str(desc)) or prog.match(desc.path):
                return initializer.fill_for(desc)
        raise InitializerError(
            f"parameter {str(desc)!r} (path {desc.path!r}) matches none of the patterns "
            f"{[p.pattern for p, _ in self.map]}; add a '.*' pattern last with a default initializer")
