"""petseg.export (installed under petseg/): petseg.keras -> one file per variant (see pipeline.py)."""
