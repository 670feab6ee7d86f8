"""petseg: train a pet-segmentation U-Net, export it to TFLite, benchmark every variant.

The installed package maps onto the repository like this (pyproject.toml, package-dir):

    petseg            petseg/      what every stage shares: data, labels, metrics, model files,
                                   runtimes, the model description (description.py)
    petseg.train      train/       dataset -> trained petseg.keras          (imports TensorFlow)
    petseg.export     export/      petseg.keras -> exported variants        (imports TensorFlow)
    petseg.benchmark  benchmark/   exported variants -> latency and accuracy (never TensorFlow)

Data flows one way, train -> export -> benchmark; this package imports none of the stages.
"""

__version__ = "0.2.0"
