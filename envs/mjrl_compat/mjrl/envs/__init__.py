"""mjrl's environment package; unlike the original it registers no environments of its own."""
