"""Container tests: the Docker images built and run with the docker SDK."""
