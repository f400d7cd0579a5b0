"""Console scripts: evaluate, evaluate_compare."""
