"""clbench's own Avalanche plugins."""
