"""Architectures rebuilt from pure-JSON config."""

from .ensemble import Ensemble, StackedEnsemble, ensemble_arch
from .factory import build_model, describe_architecture, member_archs
from .resnet import ResNet, arch_of, load_torchvision_resnet18, resnet18_arch, validate_arch

__all__ = ["Ensemble", "ResNet", "StackedEnsemble", "arch_of", "build_model", "describe_architecture",
           "ensemble_arch", "load_torchvision_resnet18", "member_archs", "resnet18_arch", "validate_arch"]
