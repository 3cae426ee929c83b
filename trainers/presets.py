"""Named starting configurations for ``python -m trainers.run --preset NAME``.

``digits`` is the built-in default: scikit-learn's 8x8 digits ship inside
the installed package, so it runs anywhere with no download, in minutes on
a laptop CPU. The CIFAR presets carry the settings of Chowdhury, Garg & Roy
(2021): direct input, ANN-to-SNN conversion as initialisation, SNN training
at T=25 with Adam (lr 1e-4), batch 64. The residual presets run the same
pipeline on the zoo's ResNets (:mod:`snncost.models.resnet`) at the
timesteps of their papers, with BatchNorm ANNs trained at SGD lr 0.1.
"""

from __future__ import annotations

_PAPER_SNN = {
    "timesteps": 25,
    "encoding": "direct",
    "optimizer": "adam",
    "lr": 1e-4,
    "weight_decay": 0.0,
    "schedule": "step",
    "milestones": [0.6, 0.8],
    "gamma": 0.2,
    "epochs": 30,
    "leak": 1.0,
}
_PAPER_COMPRESSION = {
    "spatial": {"threshold": 0.999, "epochs": 10},
    "temporal": {"schedule": [25, 20, 15, 10, 5, 3, 2, 1], "epochs": 5, "tolerance": 0.02},
    "quantize": {"bits": 5, "per_channel": True},
}
_PAPER_ANN = {
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "schedule": "step",
    "milestones": [0.5, 0.75],
    "gamma": 0.1,
    "epochs": 100,
}

# BatchNorm ResNets train at lr 0.1 (He et al. 2016; Zheng et al. 2021 and Fang et al. 2021 likewise)
_RESNET_ANN = {**_PAPER_ANN, "lr": 0.1, "schedule": "cosine", "epochs": 200}


def _resnet_snn(timesteps: int, schedule: list[int]) -> dict:
    """SNN, temporal and compression settings for a ResNet at the timesteps of its paper."""
    return {
        "snn": {**_PAPER_SNN, "timesteps": timesteps, "lr": 1e-3, "schedule": "cosine", "epochs": 100},
        "spatial": {"threshold": 0.999, "epochs": 30},
        "temporal": {"schedule": schedule, "epochs": 10, "tolerance": 0.02},
        "quantize": {"bits": 5, "per_channel": True},
    }


PRESETS: dict[str, dict] = {
    "digits": {
        "data": {"name": "digits", "batch_size": 32, "augment": False},
        "model": {"arch": "vgg-tiny", "dropout": 0.1},
        "ann": {"epochs": 30, "optimizer": "sgd", "lr": 0.05, "weight_decay": 5e-4},
        "convert": {"percentile": 99.9, "batches": 8},
        "snn": {"timesteps": 16, "epochs": 4, "optimizer": "adam", "lr": 5e-4},
        "spatial": {"threshold": 0.999, "epochs": 3, "batches": 45},
        "temporal": {"schedule": [16, 8, 4, 2, 1], "epochs": 2, "tolerance": 0.02},
        "quantize": {"bits": 5},
        "evaluate": {"samples": 360},
    },
    "fashion-mnist": {
        # the full 60,000-image training set (54,000 train + 6,000 validation), sized for a
        # 2-core CPU: about 20 minutes per seed on one core (docs/RESULTS.md)
        "data": {"name": "fashion-mnist", "batch_size": 64, "augment": False},
        "model": {"arch": "custom", "features": [16, "P", 32, 32, "P"], "classifier": [128], "dropout": 0.1},
        "ann": {"epochs": 10, "optimizer": "sgd", "lr": 0.02},
        "snn": {"timesteps": 6, "epochs": 2, "optimizer": "adam", "lr": 2e-4},
        "spatial": {"threshold": 0.999, "epochs": 2, "batches": 16},
        "temporal": {"schedule": [6, 4, 2, 1], "epochs": 1, "tolerance": 0.01},
        "quantize": {"bits": 5},
        "evaluate": {"samples": 512},
    },
    # CIFAR-10 on its full 50,000-image training set with a VGG sized for a 2-core CPU
    # (about an hour on one core): three conv layers, T=5 instead of the paper's 25
    "cifar10-small": {
        "data": {"name": "cifar10", "batch_size": 64, "augment": True},
        "model": {"arch": "custom", "features": [32, "P", 64, "P", 128, "P"], "classifier": [256], "dropout": 0.1},
        "ann": {**_PAPER_ANN, "epochs": 30, "lr": 0.05, "schedule": "cosine"},
        "snn": {**_PAPER_SNN, "timesteps": 5, "epochs": 3, "lr": 3e-4, "schedule": "cosine"},
        "spatial": {"threshold": 0.999, "epochs": 2, "ann_epochs": 15, "batches": 16},
        "temporal": {"schedule": [5, 3, 2, 1], "epochs": 1, "tolerance": 0.01},
        "quantize": {"bits": 5, "per_channel": True},
        "evaluate": {"samples": 512},
    },
    "cifar10-vgg9": {
        "data": {"name": "cifar10", "batch_size": 64, "augment": True},
        "model": {"arch": "vgg9", "dropout": 0.2},
        "ann": _PAPER_ANN,
        "snn": _PAPER_SNN,
        **_PAPER_COMPRESSION,
    },
    "cifar10-vgg16": {
        "data": {"name": "cifar10", "batch_size": 64, "augment": True},
        "model": {"arch": "vgg16", "dropout": 0.2},
        "ann": _PAPER_ANN,
        "snn": _PAPER_SNN,
        **_PAPER_COMPRESSION,
    },
    "cifar100-vgg11": {
        "data": {"name": "cifar100", "batch_size": 64, "augment": True},
        "model": {"arch": "vgg11", "dropout": 0.2},
        "ann": _PAPER_ANN,
        "snn": _PAPER_SNN,
        **_PAPER_COMPRESSION,
    },
    # Zheng et al. (AAAI 2021) train ResNet-19 with tdBN at T = 6, 4 and 2 on CIFAR-10
    "cifar10-resnet19": {
        "data": {"name": "cifar10", "batch_size": 128, "augment": True},
        "model": {"arch": "resnet19", "dropout": 0.0},
        "ann": _RESNET_ANN,
        **_resnet_snn(6, [6, 4, 2, 1]),
    },
    # Fang et al. (NeurIPS 2021): SEW-ResNet with ADD connections; T = 4 as in their ImageNet runs
    "cifar10-sew18": {
        "data": {"name": "cifar10", "batch_size": 128, "augment": True},
        "model": {"arch": "sew-resnet18", "dropout": 0.0},
        "ann": _RESNET_ANN,
        **_resnet_snn(4, [4, 2, 1]),
    },
}
