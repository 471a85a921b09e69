"""Model artifacts as formats: the MXNet NDArray list, the linear-learner ZIP, and the model loader."""
