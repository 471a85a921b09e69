"""Built-in-style algorithms. ``algorithm_for(name)`` returns the module-level ``train(env)`` to call."""
