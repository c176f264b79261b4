"""Test-session settings: frozen-prefix states are not shared through the disk cache unless a test
turns it on (tests/test_prefix_cache.py does, in a temporary cache): shards left by earlier test runs
in the repository's cache would otherwise change how many inputs a test sees computed."""

import os

os.environ.setdefault("CLBENCH_PREFIX_DISK", "0")
