"""Training pipelines for snncost: ANN training, ANN-to-SNN conversion, surrogate-gradient BPTT.

Entry point: ``python -m trainers.run`` (see :mod:`trainers.run`). This package
imports :mod:`snncost`; snncost never imports it.
"""
