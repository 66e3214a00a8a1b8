"""Architectures rebuilt from pure-JSON config; models/registry.py lists them by name."""

from .architecture import Architecture
from .convnet import ConvNet, convnet_arch
from .ensemble import Ensemble, StackedEnsemble, ensemble_arch
from .registry import (
    ARCHITECTURES,
    DEFAULT_SINGLE,
    architecture_of,
    build_model,
    describe_architecture,
    full_architecture,
    is_composite,
    member_archs,
    network_names,
    short_name,
    single_architectures,
    validate_architecture,
)
from .resnet import ResNet, arch_of, load_torchvision_resnet18, resnet18_arch, validate_arch

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_SINGLE",
    "Architecture",
    "ConvNet",
    "Ensemble",
    "ResNet",
    "StackedEnsemble",
    "arch_of",
    "architecture_of",
    "build_model",
    "convnet_arch",
    "describe_architecture",
    "ensemble_arch",
    "full_architecture",
    "is_composite",
    "load_torchvision_resnet18",
    "member_archs",
    "network_names",
    "resnet18_arch",
    "short_name",
    "single_architectures",
    "validate_arch",
    "validate_architecture",
]
