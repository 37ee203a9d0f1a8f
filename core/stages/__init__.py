"""Pipeline stages: ingest, embed, project, cluster, naming, metrics, export."""
