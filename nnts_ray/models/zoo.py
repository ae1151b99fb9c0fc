"""Architectures by `model.arch`: built-ins, torchvision and timm models by name, any nn.Module by path.

    lenet5 | small_resnet          built in (trained on the spot unless a checkpoint is given)
    torchvision:<name>             a torchvision classification model, e.g. torchvision:resnet18
    timm:<name>                    a timm model (needs `pip install 'nnts-ray[timm]'`)
    target                         any nn.Module class or factory: model.target=pkg.module.Class

Every architecture is built without pretrained weights, for `in_channels` input channels and
`num_classes` outputs. torchvision models get their first 3-channel convolution replaced by one with
`in_channels` inputs (the rest of the network is unchanged); timm models are built with `in_chans`.
Pretrained weights are only fetched when asked for with the library's own keyword —
`model.kwargs.weights=<torchvision weights name, e.g. DEFAULT>` or `model.kwargs.pretrained=true`
(timm) — and only where the machine is online. They keep the library's own classifier head; for a
grey input the first convolution's weights are summed over RGB, which equals feeding the grey image
repeated on three channels.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import typing
from typing import Any, Callable

import torch
from torch import nn

from nnts_ray.config import ConfigError, ModelConfig

BUILTIN = {"lenet5": "nnts_ray.models.lenet.LeNet5", "small_resnet": "nnts_ray.models.resnet.SmallResNet"}
ARCHS = (*BUILTIN, "torchvision:<name>", "timm:<name>", "target")
PRETRAINED_KEYS = ("weights", "pretrained")  # library keywords that ask for downloaded weights


def _choices(value: str, options: list[str]) -> str:
    close = difflib.get_close_matches(value, options, n=5, cutoff=0.5)
    return ", ".join(close) if close else ", ".join(options[:20]) + (", …" if len(options) > 20 else "")


def wants_pretrained(cfg: ModelConfig) -> bool:
    return bool(cfg.kwargs.get("weights") or cfg.kwargs.get("pretrained"))


def _builder_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    return {k: v for k, v in cfg.kwargs.items() if k not in PRETRAINED_KEYS}


def build(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    """An untrained module for `cfg.arch` (the caller seeds torch first)."""
    kind, _, name = cfg.arch.partition(":")
    if cfg.arch in BUILTIN:
        return _instantiate(import_target(BUILTIN[cfg.arch]), cfg, in_channels, num_classes)
    if kind == "torchvision" and name:
        return _torchvision(name, cfg, in_channels, num_classes)
    if kind == "timm" and name:
        return _timm(name, cfg, in_channels, num_classes)
    if cfg.arch == "target":
        return _instantiate(module_factory(cfg.target), cfg, in_channels, num_classes)
    raise ConfigError(f"model.arch={cfg.arch!r} is not allowed; choose one of: {', '.join(ARCHS)}")


def _torchvision(name: str, cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    import torchvision.models as tvm

    names = tvm.list_models(module=tvm)  # classification models only
    if name not in names:
        raise ConfigError(f"model.arch='torchvision:{name}' is not a torchvision classification model; "
                          f"close names: {_choices(name, names)}")
    kwargs = _builder_kwargs(cfg)
    if not wants_pretrained(cfg):  # pretrained weights keep the library's head
        kwargs.setdefault("num_classes", num_classes)
    model = tvm.get_model(name, weights=None, **kwargs)
    if in_channels != 3:
        replace_first_conv(model, in_channels)
    return model


def replace_first_conv(model: nn.Module, in_channels: int) -> str:
    """Swap the first 3-input-channel Conv2d (the stem) for one taking `in_channels`; returns its name."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and m.in_channels == 3 and m.groups == 1:
            new = nn.Conv2d(in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                            bias=m.bias is not None, padding_mode=m.padding_mode)
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)
            return name
    raise ConfigError(f"no 3-channel Conv2d stem found to adapt to in_channels={in_channels}; "
                      f"set model.in_channels=3 and use a 3-channel dataset")


def _timm(name: str, cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    timm = _import_timm(cfg.arch)
    if not timm.list_models(name) and not timm.is_model(name):
        raise ConfigError(f"model.arch='timm:{name}' is not a timm model; close names: "
                          f"{_choices(name, timm.list_models())}")
    kwargs = _builder_kwargs(cfg)
    if not wants_pretrained(cfg):
        kwargs.setdefault("num_classes", num_classes)
    return timm.create_model(name, pretrained=False, in_chans=in_channels, **kwargs)


def _import_timm(arch: str):
    try:
        import timm
    except ImportError as e:
        raise ConfigError(f"model.arch={arch!r} needs timm, which is not installed: "
                          f"pip install 'nnts-ray[timm]'") from e
    return timm


def _instantiate(factory: Callable[..., Any], cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    """Call a class or factory with model.kwargs, adding in_channels / num_classes where it takes them."""
    kwargs = _builder_kwargs(cfg)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    for key, value in (("in_channels", in_channels), ("num_classes", num_classes)):
        if key in params and key not in kwargs:
            kwargs[key] = value
    what = cfg.target if cfg.arch == "target" else cfg.arch
    try:
        model = factory(**kwargs)
    except TypeError as e:
        raise ConfigError(f"model {what!r} does not accept model.kwargs={cfg.kwargs}: {e}") from e
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model.target={what!r} returned a {type(model).__name__}, not a torch nn.Module")
    return model


def module_factory(path: str | None) -> Callable[..., nn.Module]:
    """model.target, refused unless it is a torch nn.Module class or a function annotated to return
    one — decided before anything is called, so a target such as os.system never runs."""
    factory = import_target(path)
    if isinstance(factory, type):
        ok = issubclass(factory, nn.Module)
    else:
        try:
            returns = typing.get_type_hints(factory).get("return")
        except Exception:  # noqa: BLE001 — builtins and unresolvable annotations: not known to build a module
            returns = None
        ok = isinstance(returns, type) and issubclass(returns, nn.Module)
    if not ok:
        raise ConfigError(f"model.target={path!r} is not an nn.Module: give a torch.nn.Module subclass (or a function "
                          "annotated '-> nn.Module'), e.g. mypkg.nets.MyNet or torchvision.models.resnet18")
    return factory


def import_target(path: str | None) -> Callable[..., Any]:
    if not path or "." not in path:
        raise ConfigError(f"model.target={path!r} is not allowed with model.arch=target; "
                          f"give an import path such as torchvision.models.resnet18 or mypkg.nets.MyNet")
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"model.target={path!r} cannot be imported ({type(e).__name__}: {e})") from e


def pretrained_state(cfg: ModelConfig, model: nn.Module) -> dict[str, torch.Tensor]:
    """The library's pretrained weights for `model` (built by `build`), adapted to its input channels."""
    kind, _, name = cfg.arch.partition(":")
    try:
        if kind == "torchvision":
            state = _torchvision_weights(name, str(cfg.kwargs["weights"])).get_state_dict(progress=False)
        elif kind == "timm":
            state = _import_timm(cfg.arch).create_model(name, pretrained=True, **_builder_kwargs(cfg)).state_dict()
        else:
            raise ConfigError(f"model.arch={cfg.arch!r} has no library weights; give model.checkpoint=<local file>")
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 — offline machines and unknown weight names end here
        raise ConfigError(f"could not fetch pretrained weights for model.arch={cfg.arch!r} ({type(e).__name__}: {e}); "
                          f"give a local state_dict with model.checkpoint instead") from e
    return adapt_input_channels(state, model)


def _torchvision_weights(name: str, weights: str):
    import torchvision.models as tvm

    enum = tvm.get_model_weights(name)
    try:
        return enum[weights.rpartition(".")[2]]
    except KeyError:
        raise ConfigError(f"model.kwargs.weights={weights!r} is not a weights name of torchvision:{name}; "
                          f"choose one of: DEFAULT, {', '.join(w.name for w in enum)}") from None


def adapt_input_channels(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """RGB first-conv weights summed over channels where the model takes 1 channel: conv(grey) equals
    the pretrained conv on the grey image repeated as RGB."""
    own = model.state_dict()
    out = dict(state)
    for key, w in state.items():
        target = own.get(key)
        if (target is not None and w.dim() == 4 and target.dim() == 4 and w.shape[1] == 3
                and target.shape[1] == 1 and w.shape[0] == target.shape[0] and w.shape[2:] == target.shape[2:]):
            out[key] = w.sum(dim=1, keepdim=True)
    return out
