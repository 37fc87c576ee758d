"""The kopf operator: a thin shell over its pure reconcile and children logic."""
