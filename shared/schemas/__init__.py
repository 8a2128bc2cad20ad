"""Wire schemas: what a job's input may hold, validated with pydantic (strict types)."""
