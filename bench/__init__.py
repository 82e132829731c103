"""tierroute's benchmarks: `python -m bench [--only NAME] [--smoke]`; see bench/README.md."""
