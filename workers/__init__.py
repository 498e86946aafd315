"""RQ job code for workhooks: apply events to state, route them, deliver them to sinks."""
