"""The engine: runs a Model and returns RunResults. The only layer that imports simpy."""
