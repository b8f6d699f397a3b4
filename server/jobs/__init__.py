"""Background jobs: bulk import and export that run beside ordinary requests."""
