"""The textbook chapter runs on gpuinit with only its imports changed, printing what it prints."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

# What the chapter's cells print, in order (In [1] prints nothing; In [3] prints nothing).
EXPECTED = """\
Init dense0_weight (256, 20)
Init dense1_weight (10, 256)
Init dense0_weight (256, 20)
Init dense1_weight (10, 256)
Init dense2_weight (256, 20)
Init dense3_weight (10, 256)
"""


def test_chapter_prints_exactly_what_the_book_prints():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "deferred_init.py")],
                            capture_output=True, text=True, cwd=ROOT, check=True,
                            env={"PYTHONPATH": str(ROOT), "GPUINIT_DEVICE": "cpu", "PATH": ""})
    assert result.stdout == EXPECTED


def test_chapter_prints_each_line_at_the_right_step(capsys):
    """Cell by cell: initialize prints nothing, the first forward prints, the second does not."""
    from gpuinit import init, nd, nn

    class MyInit(init.Initializer):
        def _init_weight(self, name, data):
            print("Init", name, data.shape)

    net = nn.Sequential()
    net.add(nn.Dense(256, activation="relu"), nn.Dense(10))
    net.initialize(init=MyInit(), device="cpu")
    assert capsys.readouterr().out == ""
    x = nd.random.uniform(shape=(2, 20), device="cpu")
    y = net(x)
    first, second = net[0].weight.name, net[1].weight.name
    assert capsys.readouterr().out == f"Init {first} (256, 20)\nInit {second} (10, 256)\n"
    assert y.shape == (2, 10)
    net(x)
    assert capsys.readouterr().out == ""
    net.initialize(init=MyInit(), force_reinit=True)
    assert capsys.readouterr().out == f"Init {first} (256, 20)\nInit {second} (10, 256)\n"
