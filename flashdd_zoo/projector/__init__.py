"""HeLIO projector labelers: pinned backbones, the LoRA network, and the folder files."""
