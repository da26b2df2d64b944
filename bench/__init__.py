"""`make bench`: Qiyue measured beside its alternatives (see bench/README.md)."""
