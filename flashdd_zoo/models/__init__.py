"""Architectures rebuilt from pure-JSON config."""

from .resnet import ResNet, arch_of, build_model, load_torchvision_resnet18, resnet18_arch, validate_arch

__all__ = ["ResNet", "arch_of", "build_model", "load_torchvision_resnet18", "resnet18_arch", "validate_arch"]
