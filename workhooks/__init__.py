"""The workhooks command line and process launcher."""

__version__ = "0.1.0"
