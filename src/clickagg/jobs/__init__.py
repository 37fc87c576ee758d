"""One thin entry point per Spark job (stream, replay): the CLI, the demo and the cluster
call these same functions."""
