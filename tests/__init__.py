"""gpuinit's tests, laid out as the package: ``tests/streams/`` for ``gpuinit/streams/``, one file
per module with behaviour of its own. A package, so that files of the same basename in different
folders (``test_spec.py``) are told apart."""
