"""crmhub command."""
