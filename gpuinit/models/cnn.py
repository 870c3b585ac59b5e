"""Convolutional networks: LeNet (as in Dive into Deep Learning) and ResNet-18/50 (torchvision's)."""

from __future__ import annotations

from .. import nn, ops


def lenet(dtype: str = "float32"):
    """LeNet-5 with sigmoid activations, for 28x28 single-channel images; input sizes deferred."""
    net = nn.Sequential()
    net.add(nn.Conv2D(6, 5, activation="sigmoid", dtype=dtype), nn.MaxPool2D(2, 2),
            nn.Conv2D(16, 5, activation="sigmoid", dtype=dtype), nn.MaxPool2D(2, 2),
            nn.Dense(120, activation="sigmoid", dtype=dtype), nn.Dense(84, activation="sigmoid", dtype=dtype),
            nn.Dense(10, dtype=dtype))
    return net


def _bn(dtype):
    bn = nn.BatchNorm(dtype=dtype)
    bn.running_mean.grad_req = bn.running_var.grad_req = "null"
    return bn


class _Residual(nn.Block):
    """A residual block: ``relu(body(x) + shortcut(x))``; bottleneck or basic."""

    def __init__(self, channels, stride, bottleneck, downsample, dtype, **kwargs):
        super().__init__(**kwargs)
        body = nn.Sequential()
        if bottleneck:
            mid = channels // 4
            body.add(nn.Conv2D(mid, 1, use_bias=False, dtype=dtype), _bn(dtype), nn.Activation("relu"),
                     nn.Conv2D(mid, 3, stride, 1, use_bias=False, dtype=dtype), _bn(dtype), nn.Activation("relu"),
                     nn.Conv2D(channels, 1, use_bias=False, dtype=dtype), _bn(dtype))
        else:
            body.add(nn.Conv2D(channels, 3, stride, 1, use_bias=False, dtype=dtype), _bn(dtype),
                     nn.Activation("relu"), nn.Conv2D(channels, 3, 1, 1, use_bias=False, dtype=dtype), _bn(dtype))
        self.body = body
        if downsample:
            self.downsample = nn.Sequential()
            self.downsample.add(nn.Conv2D(channels, 1, stride, use_bias=False, dtype=dtype), _bn(dtype))
        else:
            self.downsample = None

    def forward(self, x):
        shortcut = self.downsample(x) if self.downsample is not None else x
        return ops.relu(self.body(x) + shortcut)


def _resnet(layers, bottleneck, classes, dtype):
    net = nn.Sequential()
    net.add(nn.Conv2D(64, 7, 2, 3, use_bias=False, dtype=dtype), _bn(dtype), nn.Activation("relu"),
            nn.MaxPool2D(3, 2, 1))
    in_channels = 64
    for stage, blocks in enumerate(layers):
        channels = 64 * 2 ** stage * (4 if bottleneck else 1)
        for i in range(blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            net.add(_Residual(channels, stride, bottleneck, stride != 1 or in_channels != channels, dtype))
            in_channels = channels
    net.add(nn.GlobalAvgPool2D(), nn.Dense(classes, dtype=dtype))
    return net


def resnet18(classes: int = 1000, dtype: str = "float32"):
    """ResNet-18 (He et al. 2016), torchvision's layout: 11,689,512 trainable parameters."""
    return _resnet([2, 2, 2, 2], False, classes, dtype)


def resnet50(classes: int = 1000, dtype: str = "float32"):
    """ResNet-50 v1.5 (stride on the 3x3 convolution), torchvision's: 25,557,032 trainable parameters."""
    return _resnet([3, 4, 6, 3], True, classes, dtype)
