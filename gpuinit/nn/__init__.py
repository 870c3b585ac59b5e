"""Gluon-style layers. Containers are in ``block``; one file per layer family.

To add a layer: subclass :class:`Block` in the file of its family, create its parameters in
``__init__`` (0 for dimensions the input decides), and in ``forward`` call ``self._fix_shape`` for
each parameter whose shape the input decides, then compute with ``gpuinit.ops``.
"""

from .activations import ELU, GELU, SELU, LeakyReLU, PReLU, Swish
from .basic_layers import Activation, Dense, Dropout, Embedding, Flatten
from .block import Block, HybridBlock, HybridSequential, Sequential
from .conv_layers import (AvgPool1D, AvgPool2D, AvgPool3D, Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose,
                          Conv3D, Conv3DTranspose, GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D,
                          GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D, MaxPool1D, MaxPool2D, MaxPool3D,
                          ReflectionPad2D)
from .lambda_layers import HybridLambda, Lambda
from .norm_layers import BatchNorm, GroupNorm, InstanceNorm, LayerNorm, RMSNorm

__all__ = ["Activation", "AvgPool1D", "AvgPool2D", "AvgPool3D", "BatchNorm", "Block", "Conv1D",
           "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "Dense", "Dropout",
           "ELU", "Embedding", "Flatten", "GELU", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
           "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GroupNorm", "HybridBlock", "HybridLambda",
           "HybridSequential", "InstanceNorm", "Lambda", "LayerNorm", "LeakyReLU", "MaxPool1D", "MaxPool2D",
           "MaxPool3D", "PReLU", "ReflectionPad2D", "RMSNorm", "SELU", "Sequential", "Swish"]
