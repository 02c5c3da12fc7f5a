"""The suite's commands; each is a thin shell over pure planning and small adapters."""
