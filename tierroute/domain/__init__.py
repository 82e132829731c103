"""The domain: rules about prompts, tiers and jobs with no SDK, SQL, Celery or settings."""
