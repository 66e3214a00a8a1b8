"""LADD's dense labels: static sub-images of each distilled image, labelled once and stored beside D_S."""
