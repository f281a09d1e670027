# Models arrive with the affiliates features.
