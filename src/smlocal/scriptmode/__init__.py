"""Script mode: run the user's own training script from /opt/ml/code, as SageMaker's framework containers do."""
