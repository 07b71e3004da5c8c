"""The data tier: PostgreSQL, RabbitMQ, Redis, AWS Backup, and the data endpoints the services read.

Kept empty: importing a pure planner must not import Pulumi."""
