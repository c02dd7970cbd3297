"""Pair synthesis: Commit-Instruct and Critic-Evol as pure state machines, plus their async driver."""
