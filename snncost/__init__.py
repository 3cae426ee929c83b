"""snncost: spatio-temporal compression of spiking neural networks and hardware cost modelling."""

__version__ = "0.1.0"
