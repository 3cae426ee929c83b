"""The pipeline's stages, one module per step of the paper's method.

``train``: ANN, ANN-to-SNN conversion, SNN BPTT; ``spatial``: PCA widths and
retraining; ``temporal``: the T schedule; ``quantize``: k-bit weights;
``report``: costing every variant and noise robustness (stage ``evaluate``).
Each stage is ``stage(ctx)`` and skips itself when its checkpoint is done.
"""

from trainers.stages.quantize import stage_quantize
from trainers.stages.report import stage_evaluate
from trainers.stages.spatial import stage_spatial
from trainers.stages.temporal import stage_temporal
from trainers.stages.train import stage_ann, stage_convert, stage_snn

STAGE_FUNCS = {
    "ann": stage_ann,
    "convert": stage_convert,
    "snn": stage_snn,
    "spatial": stage_spatial,
    "temporal": stage_temporal,
    "quantize": stage_quantize,
    "evaluate": stage_evaluate,
}

__all__ = ["STAGE_FUNCS"]
