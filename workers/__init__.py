"""RQ job code: apply events to state, route them, deliver them to sinks, poll platforms without callbacks."""
