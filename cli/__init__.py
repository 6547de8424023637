"""The ``freightpay`` console script: run the stack, a worker, the sandbox, operator commands."""
