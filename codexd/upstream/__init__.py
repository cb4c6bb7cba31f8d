"""The only code that talks to the network: the upstream HTTP client and its event streams."""
