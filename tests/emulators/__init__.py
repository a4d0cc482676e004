"""Loopback servers that speak the protocols citebot talks to, scripted per test."""
