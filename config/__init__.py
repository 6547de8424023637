"""Configuration from the environment, and the one way freightpay connects to Temporal."""
