"""Check the replay against the PyTorch forward pass, spike for spike."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import snncost.nn as sn
from snncost.graph.layergraph import LayerGraph
from snncost.sim.replay import simulate


def verify_against_torch(
    model: nn.Module,
    graph: LayerGraph | None,
    inputs,
    batch_size: int = 64,
    labels=None,
) -> dict:
    """Run ``model`` (eval, no grad) and :func:`simulate` on the same inputs; compare.

    Forward hooks record every LIF layer's spikes and the encoder's output
    (so a Poisson model's seeded spikes are replayed as they were drawn);
    the replay gets exactly those input spikes. Returns a dict with
    ``spikes_compared``, ``spike_mismatches``, ``mismatch_fraction``,
    ``per_layer`` (name -> mismatches), ``max_logit_abs_diff``,
    ``logits_equal``, ``prediction_agreement`` (fraction), ``torch_logits``
    and ``counts`` (the :class:`~snncost.sim.counts.RunCounts`, with its
    ``spike_mismatches``/``spikes_compared`` set).
    """
    x = torch.as_tensor(inputs.numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs))
    x = x.to(torch.float32)
    if graph is None:
        from snncost.graph.trace import graph_of

        graph = graph_of(model, tuple(x.shape[1:]))
    was_training = model.training
    model.eval()
    lif_names = [n.name for n in graph.lif_layers()]
    modules = dict(model.named_modules())
    missing = [n for n in lif_names if not isinstance(modules.get(n), sn.LIF)]
    if missing:
        raise ValueError(f"graph LIF layers {missing} are not LIF modules of this model")
    encoder = modules.get(graph.input.name) if graph.input.encoding == "poisson" else None

    rec: dict[str, list[np.ndarray]] = {n: [] for n in lif_names}
    enc_out: list[np.ndarray] = []
    handles = []

    def make_hook(name):
        def hook(_m, _inp, out):
            rec[name].append(out.detach().cpu().numpy().astype(np.uint8))

        return hook

    for n in lif_names:
        handles.append(modules[n].register_forward_hook(make_hook(n)))
    if encoder is not None:
        handles.append(encoder.register_forward_hook(lambda _m, _i, out: enc_out.append(out.detach().cpu().numpy())))
    torch_logits = []
    try:
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                torch_logits.append(model(x[start : start + batch_size]).cpu().numpy())
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    torch_logits_np = np.concatenate(torch_logits, axis=0).astype(np.float32)
    sim_in = np.concatenate(enc_out, axis=1) if encoder is not None else x.numpy()
    run = simulate(graph, sim_in, record_spikes=True, batch_size=batch_size, labels=labels)

    per_layer = {}
    compared = mismatches = 0
    for n in lif_names:
        ref = np.concatenate(rec[n], axis=1)
        got = run.extra["spikes"][n]
        if ref.shape != got.shape:
            raise AssertionError(f"{n}: torch spikes {ref.shape} vs replay {got.shape}")
        bad = int(np.count_nonzero(ref != got))
        per_layer[n] = bad
        compared += ref.size
        mismatches += bad
    run.spike_mismatches = mismatches
    run.spikes_compared = compared
    result = {
        "spikes_compared": compared,
        "spike_mismatches": mismatches,
        "mismatch_fraction": mismatches / compared if compared else 0.0,
        "per_layer": per_layer,
        "torch_logits": torch_logits_np,
        "counts": run,
    }
    if run.logits is not None:
        sim_logits = run.logits.reshape(torch_logits_np.shape)
        result["max_logit_abs_diff"] = float(np.max(np.abs(sim_logits - torch_logits_np))) if sim_logits.size else 0.0
        result["logits_equal"] = bool(np.array_equal(sim_logits, torch_logits_np))
        result["prediction_agreement"] = float(
            np.mean(sim_logits.reshape(len(sim_logits), -1).argmax(1) == torch_logits_np.reshape(len(sim_logits), -1).argmax(1))
        )
    return result


__all__ = ["verify_against_torch"]
