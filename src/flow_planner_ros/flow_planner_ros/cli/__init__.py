"""Console scripts: synthetic_data, train, diagnose."""
