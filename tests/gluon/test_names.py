"""Gluon's default names: a class alias numbered per scope (dense0, relu0, pool0, conv0)."""

import gpuinit
from gpuinit import nn


def test_layers_are_numbered_per_alias_in_a_name_scope():
    net = nn.Sequential(prefix="net_")
    with net.name_scope():
        net.add(nn.Conv2D(4, 3), nn.Activation("relu"), nn.MaxPool2D(), nn.GlobalAvgPool2D(),
                nn.Dense(3), nn.Dense(2), nn.Activation("tanh"), nn.BatchNorm(), nn.Dropout(0.5),
                nn.Flatten())
    assert [b.name for b in net] == ["net_conv0", "net_relu0", "net_pool0", "net_pool1", "net_dense0",
                                     "net_dense1", "net_tanh0", "net_batchnorm0", "net_dropout0", "net_flatten0"]
    assert net[4].weight.name == "net_dense0_weight"


def test_an_explicit_prefix_inside_a_scope_is_under_the_scope():
    outer = nn.Sequential(prefix="outer_")
    with outer.name_scope():
        inner = nn.Dense(3, prefix="head_")
    assert inner.prefix == "outer_head_" and inner.weight.name == "outer_head_weight"


def test_apply_visits_children_then_the_block():
    net = nn.HybridSequential(prefix="test_")
    with net.name_scope():
        net.add(nn.Dense(10), nn.Dropout(0.5))
    called = []
    assert net.apply(lambda b: called.append(b.name)) is net
    assert called == ["test_dense0", "test_dropout0", "test"]
