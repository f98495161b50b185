"""Lambda entry point that brings the database schema to the head revision during deploys."""
