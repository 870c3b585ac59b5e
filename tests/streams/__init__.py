"""Tests of ``gpuinit.streams``: one file per module of the package."""
