"""petseg.train (installed under petseg/): dataset -> trained petseg.keras and its description."""
