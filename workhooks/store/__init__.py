"""Everything workhooks keeps in Redis: key names and options (keys.py), the Lua scripts, ingest and
inbox writes, quarantine, telemetry counters, the health reader and the schema version."""
