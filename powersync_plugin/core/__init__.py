"""The pure core: events, the projector, decisions, the planner and config rendering.

Nothing in this package imports an adapter, touches Docker or Dokku, or reads the clock.
"""
