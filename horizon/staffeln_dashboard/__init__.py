"""Staffeln's Horizon plugin: the project's volume backups, Staffeln's marked."""
