# Models arrive with the campaigns features.
