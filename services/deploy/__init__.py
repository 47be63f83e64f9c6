"""Deployment artefacts generated from the exchange's own declarations (topics, principals, ACLs),
so a cluster never drifts from ``services/core``: ``herstelbus deploy k8s``."""
