"""GPT-2 (Radford et al. 2019): decoder-only transformer with learned positions and a tied head."""

from __future__ import annotations

import math

import numpy as np

from .. import init, nn, ops

CONFIGS = {  # layers, width, heads
    "small": (12, 768, 12), "medium": (24, 1024, 16), "large": (36, 1280, 20), "xl": (48, 1600, 25),
}


class _Block(nn.Block):
    def __init__(self, width, heads, layers, dtype, **kwargs):
        super().__init__(**kwargs)
        normal = init.Normal(0.02)
        proj = init.Normal(0.02 / math.sqrt(2 * layers))  # GPT-2's scaled residual projections
        self.heads = heads
        self.ln_1 = nn.LayerNorm(dtype=dtype)
        self.c_attn = nn.Dense(3 * width, flatten=False, weight_initializer=normal, dtype=dtype)
        self.attn_proj = nn.Dense(width, flatten=False, weight_initializer=proj, dtype=dtype)
        self.ln_2 = nn.LayerNorm(dtype=dtype)
        self.c_fc = nn.Dense(4 * width, flatten=False, activation="gelu", weight_initializer=normal, dtype=dtype)
        self.mlp_proj = nn.Dense(width, flatten=False, weight_initializer=proj, dtype=dtype)

    def forward(self, x):
        b, t, c = x.shape
        h = self.heads
        q, k, v = np.split(self.c_attn(self.ln_1(x)), 3, axis=-1)
        q, k, v = (y.reshape(b, t, h, c // h).transpose(0, 2, 1, 3) for y in (q, k, v))
        a = ops.attention(q, k, v).transpose(0, 2, 1, 3).reshape(b, t, c)
        x = x + self.attn_proj(a)
        return x + self.mlp_proj(self.c_fc(self.ln_2(x)))


class GPT2(nn.Block):
    """GPT-2 with vocabulary 50257 and context 1024; the output head reuses the token embedding.

    Input: integer tokens (batch, time); output: logits (batch, time, vocab).
    """

    def __init__(self, layers, width, heads, vocab=50257, context=1024, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        self.wte = nn.Embedding(vocab, width, dtype=dtype, weight_initializer=init.Normal(0.02))
        self.wpe = nn.Embedding(context, width, dtype=dtype, weight_initializer=init.Normal(0.01))
        self.h = nn.Sequential()
        for _ in range(layers):
            self.h.add(_Block(width, heads, layers, dtype))
        self.ln_f = nn.LayerNorm(dtype=dtype)

    def forward(self, tokens):
        t = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(ops.positions(t, tokens))
        x = self.ln_f(self.h(x))
        return ops.matmul(x, self._value(self.wte.weight, x).T)


def gpt2(size: str = "small", dtype: str = "float32", **overrides):
    """GPT-2 ``small`` (124,439,808 parameters), ``medium``, ``large`` or ``xl``.

    ``overrides`` (layers, width, heads, vocab, context) make small test variants.
    """
    layers, width, heads = CONFIGS[size]
    cfg = dict(layers=layers, width=width, heads=heads)
    cfg.update(overrides)
    return GPT2(dtype=dtype, **cfg)
