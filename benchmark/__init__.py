"""petseg.benchmark (installed under petseg/): latency and accuracy of exported models, without TensorFlow."""
