"""What operators run against a deployed stack (AWS credentials required)."""
