"""Places where a policy is installed: one module per place, one interface for all (``base``)."""
