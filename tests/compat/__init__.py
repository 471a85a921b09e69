"""Compatibility tests: our formats against the sagemaker SDK's writers and real MXNet."""
