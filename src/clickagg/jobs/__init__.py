"""Spark job shells: argument parsing around the adapters, nothing else."""
