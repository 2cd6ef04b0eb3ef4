"""Data-quality checks of the harmonised tables against schema/ and domain rules."""
