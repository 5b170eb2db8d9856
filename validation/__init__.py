"""Live validation of a deployed cluster: ``python -m validation``."""
