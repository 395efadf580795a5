"""Adapters to the world: the journal store, Dokku, Docker and the PowerSync admin API."""
