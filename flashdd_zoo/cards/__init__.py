"""Model cards: measured numbers, rendered from config.json."""

from .measure import count_params, file_bytes, gflops_per_image
from .render import card_metadata, render_card, write_card

__all__ = ["card_metadata", "count_params", "file_bytes", "gflops_per_image", "render_card", "write_card"]
