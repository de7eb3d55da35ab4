"""First run: whether the database is ready for the CRM."""
