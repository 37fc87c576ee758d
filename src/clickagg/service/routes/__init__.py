"""One router per use case: catalogue and health, time series, breakdowns, steering, dashboard."""
