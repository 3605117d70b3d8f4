"""The school portal: a server-rendered web app where a school does what our mail asks.

A shell like the CLI: it calls the same domain functions (models/) and holds no rules.
"""
