"""Gluon-style layers. Containers are in ``block``; one file per layer family.

To add a layer: subclass :class:`Block` in the file of its family, create its parameters in
``__init__`` (0 for dimensions the input decides), and in ``forward`` call ``self._fix_shape`` for
each parameter whose shape the input decides, then compute with ``gpuinit.ops``.
"""

from .basic_layers import Activation, Dense, Dropout, Embedding, Flatten
from .block import Block, HybridBlock, HybridSequential, Sequential
from .conv_layers import AvgPool2D, Conv2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D
from .norm_layers import BatchNorm, LayerNorm, RMSNorm

__all__ = ["Activation", "AvgPool2D", "BatchNorm", "Block", "Conv2D", "Dense", "Dropout",
           "Embedding", "Flatten", "GlobalAvgPool2D", "GlobalMaxPool2D", "HybridBlock",
           "HybridSequential", "LayerNorm", "MaxPool2D", "RMSNorm", "Sequential"]
