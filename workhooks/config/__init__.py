"""workhooks.yaml: the schema (schema.py, sinks.py; platform settings come from their packages) and loading."""
