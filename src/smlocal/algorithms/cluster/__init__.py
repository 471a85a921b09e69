"""How the hosts of one training job cooperate: a single-host cluster, MXNet KVStore's, and its liveness monitor."""
