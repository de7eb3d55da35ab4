"""Rules every capability shares and that know nothing of Flask or the database (emails, ...)."""
