"""vaccel's benchmark suite: `python3 -m benchmarks --help`. Every claim of speed comes from here."""
