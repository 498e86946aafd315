"""HTTP ingress: receive, verify and parse platform callbacks (through the platform registry) and durably queue them."""
