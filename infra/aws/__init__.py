"""AWS-only adapters and definitions used by the Lambda deployment (see serverless.yml)."""
