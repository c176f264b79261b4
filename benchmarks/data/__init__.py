"""Data sets: loaders with an offline mirror, and tensor datasets that Avalanche can split."""
