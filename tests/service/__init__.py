"""The service layer in `workers/`: submit, records, jobs, metrics, on a real Redis and S3."""
