"""The kopf operator: a thin shell over the adapters."""
