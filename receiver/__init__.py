"""HTTP ingress for workhooks: receive, verify, parse and durably queue platform callbacks."""
