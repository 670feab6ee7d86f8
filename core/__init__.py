"""petseg: train a pet-segmentation U-Net, export it to TFLite, benchmark every variant.

This package holds what every stage shares (dataset reading, labels, metrics,
atomic files, CLI error handling). Stages live in ``petseg.train``,
``petseg.export`` and ``petseg.benchmark``; only ``petseg.train`` and
``petseg.export`` import TensorFlow.
"""

__version__ = "0.1.0"
