"""Architectures rebuilt from pure-JSON config; models/registry.py lists them by name."""

from .architecture import Architecture
from .ensemble import Ensemble, StackedEnsemble, ensemble_arch
from .registry import (
    ARCHITECTURES,
    DEFAULT_SINGLE,
    architecture_of,
    build_model,
    describe_architecture,
    is_composite,
    member_archs,
    short_name,
    single_architectures,
    validate_architecture,
)
from .resnet import ResNet, arch_of, load_torchvision_resnet18, resnet18_arch, validate_arch

__all__ = ["ARCHITECTURES", "Architecture", "DEFAULT_SINGLE", "Ensemble", "ResNet", "StackedEnsemble", "arch_of",
           "architecture_of", "build_model", "describe_architecture", "ensemble_arch", "is_composite",
           "load_torchvision_resnet18", "member_archs", "resnet18_arch", "short_name", "single_architectures",
           "validate_architecture", "validate_arch"]
