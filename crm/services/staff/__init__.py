"""Staff: the users who sign in and the API tokens that act as them."""
