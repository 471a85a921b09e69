"""What the algorithms share: the hyperparameter schema, the built-ins' report lines, threads and prefetch."""
