"""LLaMA-2 (Touvron et al. 2023): RMSNorm, rotary positions, SwiGLU, grouped-query attention (70B)."""

from __future__ import annotations

import numpy as np

from .. import init, nn, ops

CONFIGS = {  # layers, width, heads, kv heads, hidden
    "7b": (32, 4096, 32, 32, 11008), "13b": (40, 5120, 40, 40, 13824), "70b": (80, 8192, 64, 8, 28672),
}


class _Block(nn.Block):
    def __init__(self, width, heads, kv_heads, hidden, dtype, **kwargs):
        super().__init__(**kwargs)
        normal = init.Normal(0.02)
        head = width // heads
        self.heads, self.kv_heads = heads, kv_heads
        dense = lambda units: nn.Dense(units, use_bias=False, flatten=False, weight_initializer=normal, dtype=dtype)  # noqa: E731
        self.attention_norm = nn.RMSNorm(epsilon=1e-5, dtype=dtype)
        self.wq, self.wk, self.wv = dense(width), dense(kv_heads * head), dense(kv_heads * head)
        self.wo = dense(width)
        self.ffn_norm = nn.RMSNorm(epsilon=1e-5, dtype=dtype)
        self.w1, self.w3, self.w2 = dense(hidden), dense(hidden), dense(width)

    def forward(self, x):
        b, t, c = x.shape
        h, kv = self.heads, self.kv_heads
        d = c // h
        y = self.attention_norm(x)
        q = self.wq(y).reshape(b, t, h, d).transpose(0, 2, 1, 3)
        k = self.wk(y).reshape(b, t, kv, d).transpose(0, 2, 1, 3)
        v = self.wv(y).reshape(b, t, kv, d).transpose(0, 2, 1, 3)
        if kv != h:  # grouped-query attention: each key/value head serves h // kv query heads
            k, v = (np.broadcast_to(z[:, :, None], (b, kv, h // kv, t, d)).reshape(b, h, t, d) for z in (k, v))
        a = ops.attention(ops.rotary(q), ops.rotary(k), v).transpose(0, 2, 1, 3).reshape(b, t, c)
        x = x + self.wo(a)
        y = self.ffn_norm(x)
        return x + self.w2(ops.silu(self.w1(y)) * self.w3(y))


class Llama(nn.Block):
    """LLaMA-2 decoder with an untied output head. Input: tokens (batch, time); output: logits."""

    def __init__(self, layers, width, heads, kv_heads, hidden, vocab=32000, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        self.tok_embeddings = nn.Embedding(vocab, width, dtype=dtype, weight_initializer=init.Normal(0.02))
        self.layers = nn.Sequential()
        for _ in range(layers):
            self.layers.add(_Block(width, heads, kv_heads, hidden, dtype))
        self.norm = nn.RMSNorm(epsilon=1e-5, dtype=dtype)
        self.output = nn.Dense(vocab, use_bias=False, flatten=False, weight_initializer=init.Normal(0.02), dtype=dtype)

    def forward(self, tokens):
        return self.output(self.norm(self.layers(self.tok_embeddings(tokens))))


def llama2(size: str = "7b", dtype: str = "float32", **overrides):
    """LLaMA-2 ``7b`` (6,738,415,616 parameters), ``13b`` or ``70b`` (68,976,648,192).

    ``overrides`` (layers, width, heads, kv_heads, hidden, vocab) make small test variants.
    """
    layers, width, heads, kv_heads, hidden = CONFIGS[size]
    cfg = dict(layers=layers, width=width, heads=heads, kv_heads=kv_heads, hidden=hidden)
    cfg.update(overrides)
    return Llama(dtype=dtype, **cfg)
