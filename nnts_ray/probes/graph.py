"""The torch.fx view of a model: its graph nodes in forward order, named as torchvision's feature
extraction names them (`layer1.0.conv1`, `layer1.0.add`; a module called twice gives `relu` and
`relu_1`). The model's input is always `input`; view and re-layout operations are skipped because
their output has the same neighbours as their input."""

from __future__ import annotations

from torch import fx, nn

from nnts_ray.config import ConfigError

# Operations whose output is a view or re-layout of their input (same neighbours) or a no-op in eval.
VIEW_OPS = {"flatten", "view", "reshape", "squeeze", "unsqueeze", "contiguous", "permute", "transpose",
            "dropout", "identity", "clone", "detach"}
VIEW_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
                nn.AlphaDropout)


def is_view(node: fx.Node, root: nn.Module) -> bool:
    if node.op == "call_module":
        return isinstance(root.get_submodule(node.target), VIEW_MODULES)
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return node.op in ("call_function", "call_method") and target.lower() in VIEW_OPS


def trace(model: nn.Module) -> tuple[nn.Module, fx.Graph, dict]:
    """torchvision's NodePathTracer on the eval-mode model: (root, graph, {node: qualified name})."""
    from torchvision.models.feature_extraction import NodePathTracer, _set_default_tracer_kwargs

    tracer = NodePathTracer(**_set_default_tracer_kwargs(None))
    try:
        graph = tracer.trace(model.eval())
    except Exception as e:  # data-dependent control flow and friends
        raise ConfigError(
            f"model does not trace with torch.fx ({type(e).__name__}: {e}); use model.probe_mode=modules"
        ) from e
    return tracer.root, graph, tracer.node_to_qualname


def atomic_nodes(root: nn.Module, qualname: dict) -> dict[str, fx.Node]:
    """{probe name: graph node} in forward order; the first placeholder is `input`, views are skipped."""
    out: dict[str, fx.Node] = {}
    for node, qual in qualname.items():
        if node.op == "placeholder":
            if not any(n.op == "placeholder" for n in out.values()):
                out["input"] = node  # further inputs (with defaults) are not probe points
        elif node.op != "output" and not is_view(node, root):
            out[qual] = node
    return out
