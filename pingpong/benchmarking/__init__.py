"""``pingpong bench``: throughput and scale benchmarks and their load generators."""
