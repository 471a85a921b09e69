"""What the algorithms share: the hyperparameter schema, the built-ins' report lines, and threads."""
