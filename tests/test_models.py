"""The model zoo (gpuinit.models): published parameter counts, and the models running."""

import numpy as np
import pytest

import gpuinit
from gpuinit import models


@pytest.mark.parametrize("name,count", [("gpt2-small", 124_439_808), ("resnet50", 25_557_032),
                                        ("resnet18", 11_689_512), ("llama2-7b", 6_738_415_616),
                                        ("llama2-70b", 68_976_648_192),
                                        ("gpt2-medium", 354_823_168), ("gpt2-large", 774_030_080),
                                        ("gpt2-xl", 1_557_611_200), ("llama2-13b", 13_015_864_320)])
def test_published_parameter_counts(name, count):
    net = models.get(name)
    _, shape, dtype = models.MODELS[name]
    gpuinit.plan(net, shape, input_dtype=dtype, device="cpu")
    assert models.count_parameters(net) == count


def test_small_transformers_run_forward_on_cpu():
    g = models.gpt2("small", layers=2, width=32, heads=4, vocab=100, context=16)
    g.initialize(device="cpu", seed=0)
    tokens = np.array([[1, 2, 3, 4, 5]])
    logits = g(tokens)
    assert logits.shape == (1, 5, 100) and np.isfinite(logits).all()
    # causal: the first position's logits do not depend on later tokens
    assert np.allclose(g(np.array([[1, 9, 9, 9, 9]]))[0, 0], logits[0, 0], atol=1e-5)
    lm = models.llama2("70b", layers=2, width=64, heads=8, kv_heads=2, hidden=96, vocab=50)
    lm.initialize(device="cpu", seed=0)
    assert lm(tokens).shape == (1, 5, 50) and lm.layers[0].wk.weight.shape == (16, 64)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_plans_its_example_input(name):
    _, shape, dtype = models.MODELS[name]
    net = models.get(name)
    p = gpuinit.plan(net, shape, input_dtype=dtype, device="cpu")
    classes = 50257 if name.startswith("gpt2") else 32000 if name.startswith("llama2") else \
        1000 if name.startswith("resnet") else 10
    batch = tuple(shape) if dtype == "int64" else tuple(shape[:1])  # tokens keep their positions
    assert p.output_shape == batch + (classes,)
    assert p.num_elements >= models.count_parameters(net) > 0  # running statistics are not trained


def test_an_unknown_model_name_lists_the_choices():
    with pytest.raises(gpuinit.GpuInitError, match=r"unknown model 'gpt3'; choose one of \[.*'gpt2-small'"):
        models.get("gpt3")
